{{/*
The exporter's pod, shared by the Deployment (one tenant, or one process for every tenant)
and the StatefulSet (shards of the tenants file).
*/}}
{{- define "tve.podTemplate" -}}
{{- $credDir := "/etc/teams-voice-exporter/credentials" }}
{{- $webDir := "/etc/teams-voice-exporter/web" }}
{{- $tenantsDir := "/etc/teams-voice-exporter/tenants" }}
{{- $a := .Values.azure }}
{{- $usesSecret := include "tve.mountsSecret" . }}
{{- $selfWI := and (not .Values.demo) (eq $a.auth "workload-identity") (not .Values.workloadIdentity.webhook) }}
{{- $tokenDir := "/var/run/secrets/azure/tokens" }}
{{- $tenantsMode := include "tve.tenantsMode" . -}}
metadata:
  labels:
    {{- include "tve.selectorLabels" . | nindent 4 }}
    {{- if and (not .Values.demo) (eq $a.auth "workload-identity") .Values.workloadIdentity.webhook }}
    azure.workload.identity/use: "true"
    {{- end }}
    {{- with .Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- $podAnnotations := deepCopy .Values.podAnnotations }}
  {{- if or (include "tve.createSecret" .) .Values.web.config.content }}
  {{- /* Roll the pod when a Secret the chart creates changes. */}}
  {{- $_ := set $podAnnotations "checksum/secrets" (include (print $.Template.BasePath "/secret.yaml") . | sha256sum) }}
  {{- end }}
  {{- if and .Values.tenants.list .Values.tenants.rolloutOnChange }}
  {{- /* A changed tenants file reaches a running exporter only through SIGHUP or
         POST /-/reload, which nothing sends by itself: roll the pods instead (README,
         "Reloading the tenants file"). */}}
  {{- $_ := set $podAnnotations "checksum/tenants" (include (print $.Template.BasePath "/tenants-configmap.yaml") . | sha256sum) }}
  {{- end }}
  {{- if .Values.sharding.enabled }}
  {{- /* Every shard must agree on the total: a new shard count restarts them all, so
         that no tenant is read by two shards, or by none, under an old total. */}}
  {{- $_ := set $podAnnotations "teams-voice-exporter/shards" (toString .Values.sharding.shards) }}
  {{- end }}
  {{- with $podAnnotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  serviceAccountName: {{ include "tve.serviceAccountName" . }}
  {{- /* Only a shard that reads the total from its StatefulSet calls the Kubernetes API. */}}
  automountServiceAccountToken: {{ or (include "tve.totalShardsFromApi" .) .Values.serviceAccount.automountServiceAccountToken }}
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  securityContext:
    {{- toYaml .Values.podSecurityContext | nindent 4 }}
  containers:
    - name: exporter
      image: {{ include "tve.image" . | quote }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      args:
        - --web.listen-address=:{{ .Values.web.port }}
        - --web.telemetry-path={{ .Values.web.telemetryPath }}
        - --log.level={{ .Values.log.level }}
        - --log.format={{ .Values.log.format }}
        {{- if .Values.demo }}
        - --demo
        {{- else }}
        {{- if ne $a.auth "secret" }}
        - --azure.auth={{ $a.auth }}
        {{- end }}
        {{- if and $usesSecret (eq $a.auth "secret") }}
        - --azure.client-secret-file={{ $credDir }}/{{ $a.secretKeys.clientSecret }}
        {{- end }}
        {{- with $a.cloud }}
        - --azure.cloud={{ . }}
        {{- end }}
        {{- with $a.authorityHost }}
        - --azure.authority-host={{ . }}
        {{- end }}
        {{- with .Values.graph.endpoint }}
        - --graph.endpoint={{ . }}
        {{- end }}
        {{- end }}
        {{- with .Values.graph.timeout }}
        - --graph.timeout={{ . }}
        {{- end }}
        {{- if not (kindIs "invalid" .Values.graph.maxRetries) }}
        - --graph.max-retries={{ .Values.graph.maxRetries }}
        {{- end }}
        {{- with .Values.graph.retryBackoff }}
        - --graph.retry-backoff={{ . }}
        {{- end }}
        {{- with .Values.poll.interval }}
        - --poll.interval={{ . }}
        {{- end }}
        {{- with .Values.poll.recentWindow }}
        - --poll.recent-window={{ . }}
        {{- end }}
        {{- with .Values.poll.sweepInterval }}
        - --poll.sweep-interval={{ . }}
        {{- end }}
        {{- with .Values.poll.lookback }}
        - --poll.lookback={{ . }}
        {{- end }}
        {{- with .Values.collectors.callQuality }}
        {{- if .enabled }}
        - --collector.call-quality
        {{- with .wait }}
        - --call-quality.wait={{ . }}
        {{- end }}
        {{- with .giveUp }}
        - --call-quality.give-up={{ . }}
        {{- end }}
        {{- if not (kindIs "invalid" .maxPending) }}
        - --call-quality.max-pending={{ .maxPending }}
        {{- end }}
        {{- end }}
        {{- end }}
        {{- if .Values.persistence.enabled }}
        - --state.path={{ .Values.persistence.mountPath }}/{{ .Values.persistence.fileName }}
        {{- end }}
        {{- if $tenantsMode }}
        - --config.file={{ $tenantsDir }}/tenants.yml
        {{- if not (kindIs "invalid" .Values.tenants.maxConcurrentReads) }}
        - --tenants.max-concurrent-reads={{ .Values.tenants.maxConcurrentReads }}
        {{- end }}
        {{- with .Values.tenants.removedTenantRetention }}
        - --state.removed-tenant-retention={{ . }}
        {{- end }}
        {{- end }}
        {{- if .Values.sharding.enabled }}
        - --shard.auto
        {{- if .Values.sharding.explicitTotal }}
        - --total-shards={{ .Values.sharding.shards }}
        {{- end }}
        {{- end }}
        {{- if .Values.web.enableLifecycle }}
        - --web.enable-lifecycle
        {{- end }}
        {{- if include "tve.webConfigEnabled" . }}
        - --web.config.file={{ $webDir }}/{{ .Values.web.config.key }}
        {{- end }}
        {{- range .Values.extraArgs }}
        - {{ . | quote }}
        {{- end }}
      {{- $env := list }}
      {{- if and (not .Values.demo) (ne $a.auth "workload-identity") }}
      {{- /* Workload Identity's webhook injects AZURE_CLIENT_ID and AZURE_TENANT_ID itself. */}}
      {{- $ids := dict "AZURE_CLIENT_ID" (list $a.clientId $a.secretKeys.clientId) }}
      {{- if not $tenantsMode }}
      {{- /* With a tenants file the tenants come from the file; the shared credential is
             the multi-tenant application's, valid in each consenting tenant. */}}
      {{- $_ := set $ids "AZURE_TENANT_ID" (list $a.tenantId $a.secretKeys.tenantId) }}
      {{- end }}
      {{- range $name, $pair := $ids }}
      {{- if index $pair 0 }}
      {{- $env = append $env (dict "name" $name "value" (index $pair 0)) }}
      {{- else if $a.existingSecret }}
      {{- $env = append $env (dict "name" $name "valueFrom" (dict "secretKeyRef" (dict "name" $a.existingSecret "key" (index $pair 1) "optional" true))) }}
      {{- end }}
      {{- end }}
      {{- end }}
      {{- if $selfWI }}
      {{- /* What the webhook would inject, for clusters without it. */}}
      {{- $env = append $env (dict "name" "AZURE_CLIENT_ID" "value" $a.clientId) }}
      {{- if not $tenantsMode }}
      {{- $env = append $env (dict "name" "AZURE_TENANT_ID" "value" (default $a.tenantId .Values.workloadIdentity.tenantId)) }}
      {{- end }}
      {{- $env = append $env (dict "name" "AZURE_FEDERATED_TOKEN_FILE" "value" (printf "%s/azure-identity-token" $tokenDir)) }}
      {{- end }}
      {{- if and $usesSecret (eq $a.auth "certificate") }}
      {{- $env = append $env (dict "name" "AZURE_CLIENT_CERTIFICATE_PATH" "value" (printf "%s/%s" $credDir $a.secretKeys.clientCertificate)) }}
      {{- $env = append $env (dict "name" "AZURE_CLIENT_CERTIFICATE_PASSWORD" "valueFrom" (dict "secretKeyRef" (dict "name" (include "tve.secretName" .) "key" $a.secretKeys.clientCertificatePassword "optional" true))) }}
      {{- end }}
      {{- if .Values.sharding.enabled }}
      {{- /* --shard.auto: the ordinal from POD_INDEX (or POD_NAME's trailing -N), the
             StatefulSet's name from POD_NAME and its namespace from POD_NAMESPACE. */}}
      {{- $env = append $env (dict "name" "POD_NAME" "valueFrom" (dict "fieldRef" (dict "fieldPath" "metadata.name"))) }}
      {{- $env = append $env (dict "name" "POD_NAMESPACE" "valueFrom" (dict "fieldRef" (dict "fieldPath" "metadata.namespace"))) }}
      {{- $env = append $env (dict "name" "POD_INDEX" "valueFrom" (dict "fieldRef" (dict "fieldPath" "metadata.labels['apps.kubernetes.io/pod-index']"))) }}
      {{- end }}
      {{- with concat $env .Values.extraEnv }}
      env:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      ports:
        - name: http-metrics
          containerPort: {{ .Values.web.port }}
          protocol: TCP
      {{- /* The kubelet's HTTP probes send no credentials and no client certificate,
             so behind a web config (basic auth, mutual TLS) they would fail forever:
             an httpGet probe then becomes a TCP check of the same port. */}}
      {{- $protected := or .Values.web.config.existingSecret .Values.web.config.content }}
      {{- with .Values.livenessProbe }}
      livenessProbe:
        {{- include "teams-voice-exporter.probe" (dict "probe" . "protected" $protected) | nindent 8 }}
      {{- end }}
      {{- with .Values.readinessProbe }}
      readinessProbe:
        {{- include "teams-voice-exporter.probe" (dict "probe" . "protected" $protected) | nindent 8 }}
      {{- end }}
      securityContext:
        {{- toYaml .Values.securityContext | nindent 8 }}
      {{- with .Values.resources }}
      resources:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- $mounts := list }}
      {{- if $usesSecret }}
      {{- $mounts = append $mounts (dict "name" "credentials" "mountPath" $credDir "readOnly" true) }}
      {{- end }}
      {{- if include "tve.webConfigEnabled" . }}
      {{- $mounts = append $mounts (dict "name" "web-config" "mountPath" $webDir "readOnly" true) }}
      {{- end }}
      {{- if $selfWI }}
      {{- $mounts = append $mounts (dict "name" "azure-identity-token" "mountPath" $tokenDir "readOnly" true) }}
      {{- end }}
      {{- if .Values.persistence.enabled }}
      {{- $mounts = append $mounts (dict "name" "state" "mountPath" .Values.persistence.mountPath) }}
      {{- end }}
      {{- if $tenantsMode }}
      {{- $mounts = append $mounts (dict "name" "tenants" "mountPath" $tenantsDir "readOnly" true) }}
      {{- end }}
      {{- range $i, $s := .Values.tenants.secrets }}
      {{- $mounts = append $mounts (dict "name" (printf "tenant-secret-%d" $i) "mountPath" $s.mountPath "readOnly" true) }}
      {{- end }}
      {{- with concat $mounts .Values.extraVolumeMounts }}
      volumeMounts:
        {{- toYaml . | nindent 8 }}
      {{- end }}
  {{- $volumes := list }}
  {{- if $usesSecret }}
  {{- $items := list }}
  {{- if eq $a.auth "secret" }}
  {{- $items = append $items (dict "key" $a.secretKeys.clientSecret "path" $a.secretKeys.clientSecret) }}
  {{- else }}
  {{- $items = append $items (dict "key" $a.secretKeys.clientCertificate "path" $a.secretKeys.clientCertificate) }}
  {{- end }}
  {{- /* 0440: readable by the exporter's group (fsGroup) only. */}}
  {{- $volumes = append $volumes (dict "name" "credentials" "secret" (dict "secretName" (include "tve.secretName" .) "defaultMode" 288 "items" $items)) }}
  {{- end }}
  {{- if include "tve.webConfigEnabled" . }}
  {{- $volumes = append $volumes (dict "name" "web-config" "secret" (dict "secretName" (include "tve.webConfigSecretName" .) "defaultMode" 288)) }}
  {{- end }}
  {{- if $selfWI }}
  {{- $token := dict "path" "azure-identity-token" "audience" .Values.workloadIdentity.audience "expirationSeconds" (int .Values.workloadIdentity.tokenExpirationSeconds) }}
  {{- $volumes = append $volumes (dict "name" "azure-identity-token" "projected" (dict "defaultMode" 288 "sources" (list (dict "serviceAccountToken" $token)))) }}
  {{- end }}
  {{- if and .Values.persistence.enabled (not .Values.sharding.enabled) }}
  {{- /* A StatefulSet's shards get theirs from its volumeClaimTemplates. */}}
  {{- $volumes = append $volumes (dict "name" "state" "persistentVolumeClaim" (dict "claimName" (include "tve.claimName" .))) }}
  {{- end }}
  {{- if $tenantsMode }}
  {{- /* A whole-directory mount (no subPath), so that the kubelet's updates of the
         ConfigMap reach the file a reload reads. */}}
  {{- $items := list (dict "key" (include "tve.tenantsKey" .) "path" "tenants.yml") }}
  {{- $volumes = append $volumes (dict "name" "tenants" "configMap" (dict "name" (include "tve.tenantsConfigMapName" .) "items" $items)) }}
  {{- end }}
  {{- range $i, $s := .Values.tenants.secrets }}
  {{- /* optional: a tenant whose Secret is missing fails on its own (its tenant_up is 0)
         instead of keeping every shard from starting. */}}
  {{- $secret := dict "secretName" $s.name "defaultMode" 288 "optional" true }}
  {{- with $s.items }}
  {{- $_ := set $secret "items" . }}
  {{- end }}
  {{- $volumes = append $volumes (dict "name" (printf "tenant-secret-%d" $i) "secret" $secret) }}
  {{- end }}
  {{- with concat $volumes .Values.extraVolumes }}
  volumes:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
