{{/*
Names. With the release name "scim-operator" every object is named as in
`make build-installer`'s dist/install.yaml (namePrefix scim-operator-).
*/}}
{{- define "scim-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "scim-operator.fullname" -}}
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

{{- define "scim-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "scim-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "scim-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "scim-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The manager's pods: what the Deployment and the Services select. */}}
{{- define "scim-operator.podLabels" -}}
control-plane: controller-manager
{{ include "scim-operator.selectorLabels" . }}
{{- end }}

{{- define "scim-operator.image" -}}
{{- $repo := required "image.repository is required" .Values.image.repository }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" $repo .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $repo (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/* The kubernetes.io/tls Secret the manager serves SCIM with (tls.source secret and certManager). */}}
{{- define "scim-operator.tlsSecretName" -}}
{{- .Values.tls.secretName | default (printf "%s-scim-tls" (include "scim-operator.fullname" .)) }}
{{- end }}

{{/*
The ServiceAccount names the manager may impersonate (its ClusterRole's impersonate rule,
templates/rbac.yaml), as a JSON list: lockdown.defaultServiceAccount and
lockdown.impersonableServiceAccounts. Empty: the rule is left out (a rule with no
resourceNames would allow every ServiceAccount).
*/}}
{{- define "scim-operator.impersonableServiceAccounts" -}}
{{- $names := list }}
{{- with .Values.lockdown.defaultServiceAccount }}{{ $names = append $names . }}{{ end }}
{{- range .Values.lockdown.impersonableServiceAccounts }}{{ $names = append $names . }}{{ end }}
{{- $names | uniq | toJson }}
{{- end }}

{{/* Refuses combinations of values that would install something broken or unsafe. */}}
{{- define "scim-operator.validate" -}}
{{- $source := .Values.tls.source }}
{{- if not (has $source (list "secret" "certManager" "plainHTTP")) }}
{{- fail (printf "tls.source must be secret, certManager or plainHTTP, not %q" $source) }}
{{- end }}
{{- if eq $source "plainHTTP" }}
{{- if not .Values.scim.trustedProxies }}
{{- fail "tls.source=plainHTTP needs scim.trustedProxies: the addresses (CIDRs) of the proxy that terminates TLS in front of the Service, so that meta.location says https and each IdP client is throttled by its own address, not the proxy's" }}
{{- end }}
{{- if ne .Values.scim.service.type "ClusterIP" }}
{{- fail (printf "tls.source=plainHTTP serves SCIM without TLS: scim.service.type must be ClusterIP (behind your TLS-terminating proxy), not %s" .Values.scim.service.type) }}
{{- end }}
{{- if .Values.tls.secretName }}
{{- fail "tls.secretName is set but tls.source=plainHTTP mounts no certificate: choose tls.source=secret, or drop tls.secretName" }}
{{- end }}
{{- end }}
{{- if and (ne $source "certManager") (or .Values.tls.certManager.issuerRef.name .Values.tls.certManager.dnsNames) }}
{{- fail (printf "tls.certManager is configured but tls.source is %s: set tls.source=certManager, or drop the tls.certManager values" $source) }}
{{- end }}
{{- if gt (len (include "scim-operator.fullname" .)) 55 }}
{{- fail (printf "the name %q is longer than 55 characters, and Service names would pass 63: choose a shorter release name or set fullnameOverride" (include "scim-operator.fullname" .)) }}
{{- end }}
{{- end }}
