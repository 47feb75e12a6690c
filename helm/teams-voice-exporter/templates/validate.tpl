{{- /* Refuse value combinations that would deploy a pod that cannot work. */ -}}
{{- $a := .Values.azure }}
{{- if and $a.existingSecret (or $a.clientSecret $a.clientCertificate $a.clientCertificatePassword) }}
{{- fail "azure.existingSecret is set together with azure.clientSecret/clientCertificate: choose one. Keep the credentials in the existing Secret (recommended) and remove the others." }}
{{- end }}
{{- if and (eq $a.auth "secret") (not $a.existingSecret) $a.clientCertificate }}
{{- fail "azure.clientCertificate is set but azure.auth is \"secret\": set azure.auth=certificate to use the certificate." }}
{{- end }}
{{- if and (eq $a.auth "certificate") (not $a.existingSecret) $a.clientSecret }}
{{- fail "azure.clientSecret is set but azure.auth is \"certificate\": set azure.clientCertificate instead, or azure.auth=secret." }}
{{- end }}
{{- if and (eq $a.auth "certificate") (not .Values.demo) (not $a.existingSecret) (not $a.clientCertificate) }}
{{- fail "azure.auth=certificate needs the certificate: set azure.existingSecret to a Secret with the key azure.secretKeys.clientCertificate (recommended), or azure.clientCertificate." }}
{{- end }}
{{- if and (eq $a.auth "workload-identity") (not .Values.demo) (not $a.clientId) }}
{{- fail "azure.auth=workload-identity needs azure.clientId: the client ID of the app registration or managed identity with a federated credential for this ServiceAccount (it becomes the azure.workload.identity/client-id annotation)." }}
{{- end }}
{{- if and .Values.web.config.existingSecret .Values.web.config.content }}
{{- fail "web.config.existingSecret and web.config.content are both set: choose one." }}
{{- end }}
{{- if and (eq $a.auth "workload-identity") (not .Values.demo) (not .Values.workloadIdentity.webhook) (not (or $a.tenantId .Values.workloadIdentity.tenantId)) (not (include "tve.tenantsMode" .)) }}
{{- fail "azure.auth=workload-identity with workloadIdentity.webhook=false needs the tenant: set azure.tenantId." }}
{{- end }}
{{- if and .Values.demo .Values.persistence.enabled }}
{{- fail "demo=true and persistence.enabled=true: the exporter refuses --state.path with --demo, because the simulated tenant is new at every start. Turn persistence off for the demo." }}
{{- end }}

{{- /* Many tenants and sharding. */ -}}
{{- $t := .Values.tenants }}
{{- $sh := .Values.sharding }}
{{- if and $t.list $t.existingConfigMap }}
{{- fail "tenants.list and tenants.existingConfigMap are both set: choose one. The chart renders tenants.list into a ConfigMap of its own; tenants.existingConfigMap names one you keep yourself." }}
{{- end }}
{{- if and .Values.demo (include "tve.tenantsMode" .) }}
{{- fail "demo=true with a tenants file (tenants.list or tenants.existingConfigMap): the demo reads its simulated tenant, not real ones. Turn demo off, or remove the tenants." }}
{{- end }}
{{- if and $sh.enabled (not (include "tve.tenantsMode" .)) }}
{{- fail "sharding.enabled=true needs a tenants file to divide between the shards: set tenants.list or tenants.existingConfigMap." }}
{{- end }}
{{- if and $sh.enabled .Values.persistence.existingClaim }}
{{- fail "sharding.enabled=true with persistence.existingClaim: every shard needs a claim of its own, which the StatefulSet creates from persistence.size and persistence.storageClass. Remove persistence.existingClaim." }}
{{- end }}
{{- if and $sh.enabled (ne .Values.service.type "ClusterIP") }}
{{- fail (printf "sharding.enabled=true makes the Service headless (the StatefulSet's serviceName), which a Service of type %s cannot be: set service.type=ClusterIP." .Values.service.type) }}
{{- end }}
{{- $dirs := list }}
{{- range .Values.tenants.secrets }}
{{- $dirs = append $dirs (trimSuffix "/" .mountPath) }}
{{- end }}
{{- if ne (len $dirs) (len (uniq $dirs)) }}
{{- fail "tenants.secrets: two Secrets share a mountPath; give each its own directory." }}
{{- end }}
{{- range $dir := $dirs }}
{{- if hasPrefix "/etc/teams-voice-exporter" $dir }}
{{- fail (printf "tenants.secrets: mountPath %s lies in /etc/teams-voice-exporter, where the chart mounts its own files; choose another directory, e.g. /etc/tve/<tenant>." $dir) }}
{{- end }}
{{- end }}
{{- range .Values.extraVolumeMounts }}
{{- $dirs = append $dirs (trimSuffix "/" .mountPath) }}
{{- end }}
{{- $ids := dict }}
{{- $names := dict }}
{{- range $i, $tenant := $t.list }}
{{- $where := printf "tenants.list[%d] (id %s)" $i $tenant.id }}
{{- if hasKey $ids (lower $tenant.id) }}
{{- fail (printf "%s: the id is listed twice; a tenant appears once in the tenants file." $where) }}
{{- end }}
{{- $_ := set $ids (lower $tenant.id) true }}
{{- $name := default $tenant.id $tenant.name }}
{{- if hasKey $names $name }}
{{- fail (printf "%s: the name %q is used twice; each tenant's name (its tenant label) must be unique." $where $name) }}
{{- end }}
{{- $_ := set $names $name true }}
{{- $files := list }}
{{- range $key := list "client_secret_file" "client_certificate_file" "federated_token_file" }}
{{- with index $tenant $key }}
{{- $files = append $files . }}
{{- end }}
{{- end }}
{{- if and $tenant.client_id (ne (len $files) 1) }}
{{- fail (printf "%s: client_id needs exactly one of client_secret_file, client_certificate_file or federated_token_file (it has %d)." $where (len $files)) }}
{{- end }}
{{- if and (not $tenant.client_id) $files }}
{{- fail (printf "%s: a credential file without client_id: add the client_id of the tenant's own app registration, or remove the file to use the shared application." $where) }}
{{- end }}
{{- range $file := $files }}
{{- $mounted := false }}
{{- range $dir := $dirs }}
{{- if hasPrefix (printf "%s/" $dir) $file }}
{{- $mounted = true }}
{{- end }}
{{- end }}
{{- if not $mounted }}
{{- fail (printf "%s: %s is in no mounted directory: list the tenant's Secret in tenants.secrets with a mountPath that holds this file (e.g. {name: %s-app, mountPath: %s})." $where $file (default "tenant" $tenant.name) (dir $file)) }}
{{- end }}
{{- end }}
{{- end }}
