{{/* Chart name, truncated to the 63 characters a label allows. */}}
{{- define "tve.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name of the release's objects. */}}
{{- define "tve.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "tve.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tve.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "tve.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "tve.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: teams-voice-exporter
{{- end }}

{{- define "tve.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "tve.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "tve.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Whether the chosen credential kind lives in a Secret (client secret or certificate). */}}
{{- define "tve.secretAuth" -}}
{{- if and (not .Values.demo) (has .Values.azure.auth (list "secret" "certificate")) }}true{{ end }}
{{- end }}

{{/* The Secret holding the credentials: the user's, or the one the chart creates. */}}
{{- define "tve.secretName" -}}
{{- default (printf "%s-credentials" (include "tve.fullname" .)) .Values.azure.existingSecret }}
{{- end }}

{{/* Whether the chart creates the credentials Secret. */}}
{{- define "tve.createSecret" -}}
{{- if and (include "tve.secretAuth" .) (not .Values.azure.existingSecret) (or .Values.azure.clientSecret .Values.azure.clientCertificate) }}true{{ end }}
{{- end }}

{{/*
Whether the pod mounts the credentials Secret. Without one configured nothing is mounted,
so that the exporter starts and says which credentials are missing, rather than the pod
waiting for a Secret that does not exist.
*/}}
{{- define "tve.mountsSecret" -}}
{{- if and (include "tve.secretAuth" .) (or .Values.azure.existingSecret (include "tve.createSecret" .)) }}true{{ end }}
{{- end }}

{{/* Whether credentials are configured at all for the chosen kind. */}}
{{- define "tve.hasCredentials" -}}
{{- if or .Values.demo (not (include "tve.secretAuth" .)) (include "tve.mountsSecret" .) }}true{{ end }}
{{- end }}

{{- define "tve.webConfigSecretName" -}}
{{- default (printf "%s-web-config" (include "tve.fullname" .)) .Values.web.config.existingSecret }}
{{- end }}

{{- define "tve.webConfigEnabled" -}}
{{- if or .Values.web.config.existingSecret .Values.web.config.content }}true{{ end }}
{{- end }}

{{- define "tve.claimName" -}}
{{- default (printf "%s-state" (include "tve.fullname" .)) .Values.persistence.existingClaim }}
{{- end }}

{{/* A file name made fit for an object name: lower case, runs of other characters as "-". */}}
{{- define "tve.slug" -}}
{{- regexReplaceAll "[^a-z0-9-]+" (lower .) "-" | trimAll "-" }}
{{- end }}

{{/*
A probe as given in values, except that an httpGet probe becomes a tcpSocket probe on the
same port when a web config protects every path (see deployment.yaml).
*/}}
{{- define "teams-voice-exporter.probe" -}}
{{- if and .protected .probe.httpGet }}
{{- $rest := omit .probe "httpGet" }}
tcpSocket:
  port: {{ .probe.httpGet.port }}
{{- with $rest }}
{{ toYaml . }}
{{- end }}
{{- else }}
{{- toYaml .probe }}
{{- end }}
{{- end }}

{{/* Whether the exporter reads a tenants file (--config.file) rather than one tenant. */}}
{{- define "tve.tenantsMode" -}}
{{- if or .Values.tenants.list .Values.tenants.existingConfigMap }}true{{ end }}
{{- end }}

{{/* The ConfigMap holding the tenants file: the user's, or the one the chart renders. */}}
{{- define "tve.tenantsConfigMapName" -}}
{{- default (printf "%s-tenants" (include "tve.fullname" .)) .Values.tenants.existingConfigMap }}
{{- end }}

{{/* The tenants file's key in that ConfigMap. */}}
{{- define "tve.tenantsKey" -}}
{{- if .Values.tenants.existingConfigMap }}{{ .Values.tenants.key }}{{ else }}tenants.yml{{ end }}
{{- end }}

{{/*
Whether the shards read their total from the StatefulSet through the Kubernetes API (and so
need a token and a Role), rather than from --total-shards.
*/}}
{{- define "tve.totalShardsFromApi" -}}
{{- if and .Values.sharding.enabled (not .Values.sharding.explicitTotal) }}true{{ end }}
{{- end }}
