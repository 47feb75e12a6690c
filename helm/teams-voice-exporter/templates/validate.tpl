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
{{- if and (eq $a.auth "workload-identity") (not .Values.demo) (not .Values.workloadIdentity.webhook) (not (or $a.tenantId .Values.workloadIdentity.tenantId)) }}
{{- fail "azure.auth=workload-identity with workloadIdentity.webhook=false needs the tenant: set azure.tenantId." }}
{{- end }}
{{- if and .Values.demo .Values.persistence.enabled }}
{{- fail "demo=true and persistence.enabled=true: the exporter refuses --state.path with --demo, because the simulated tenant is new at every start. Turn persistence off for the demo." }}
{{- end }}
