{{/* The release's base name: the release name, or <release>-tally when it does not contain "tally". */}}
{{- define "tally.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The name of one service's objects: (dict "root" $ "name" "ledger"). */}}
{{- define "tally.component" -}}
{{- printf "%s-%s" (include "tally.fullname" .root) .name -}}
{{- end -}}

{{- define "tally.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{- define "tally.labels" -}}
{{ include "tally.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: tally
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end -}}

{{/* Labels of the chart's shared objects (Secret, Job, rules). */}}
{{- define "tally.commonLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: tally
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "tally.secretName" -}}
{{- default (include "tally.fullname" .) .Values.secrets.existingSecret -}}
{{- end -}}

{{- define "tally.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* An env entry from the Secret: (dict "root" $ "env" "STRIPE_SECRET_KEY" "key" "stripe-secret-key" "optional" true). */}}
{{- define "tally.secretEnv" -}}
- name: {{ .env }}
  valueFrom:
    secretKeyRef:
      name: {{ include "tally.secretName" .root }}
      key: {{ .key }}
      optional: {{ .optional }}
{{- end -}}

{{/* The environment of one service: (dict "root" $ "name" "ledger" "svc" $svc). */}}
{{- define "tally.env" -}}
{{- $root := .root -}}
{{- $v := .root.Values -}}
{{- $svc := .svc -}}
- name: TALLY_LOG_LEVEL
  value: {{ $v.logLevel | quote }}
- name: TALLY_CONSOLE_URL
  value: {{ $v.consoleURL | quote }}
- name: TALLY_DEFAULT_CURRENCY
  value: {{ $v.defaultCurrency | quote }}
- name: TALLY_CREDIT_VALIDITY
  value: {{ $v.creditValidity | quote }}
{{- with $v.maxRequestAmount }}
- name: TALLY_MAX_REQUEST_AMOUNT
  value: {{ . | quote }}
{{- end }}
{{- if $svc.httpPort }}
- name: TALLY_{{ $svc.envPrefix }}_HTTP_ADDR
  value: {{ printf ":%v" $svc.httpPort | quote }}
{{- else }}
- name: TALLY_{{ $svc.envPrefix }}_GRPC_ADDR
  value: {{ printf ":%v" $svc.grpcPort | quote }}
{{- end }}
- name: TALLY_{{ $svc.envPrefix }}_METRICS_ADDR
  value: {{ printf ":%v" $v.metrics.port | quote }}
{{- /* dns:/// of a headless Service: the caller resolves every ready pod and balances round-robin (pkg/rpcclient). */}}
{{- range $callee := $svc.calls }}
{{- $c := index $v.services $callee }}
- name: TALLY_{{ $c.envPrefix }}_ADDR
  value: {{ printf "dns:///%s:%v" (include "tally.component" (dict "root" $root "name" $callee)) $c.grpcPort | quote }}
{{- end }}
{{- if $svc.database }}
{{ include "tally.secretEnv" (dict "root" $root "env" "DATABASE_URL" "key" (default $v.postgresql.secretKey $svc.databaseSecretKey) "optional" false) }}
- name: TALLY_MIGRATE_ON_START
  value: {{ $v.migrations.migrateOnStart | quote }}
{{- end }}
{{- if $svc.shards }}
{{- /* The ledger's shards (docs/scaling.md): "main=postgres://… b=postgres://…"; absent: DATABASE_URL alone. */}}
{{ include "tally.secretEnv" (dict "root" $root "env" "TALLY_LEDGER_SHARDS" "key" "ledger-shards" "optional" true) }}
{{- end }}
{{- if and $svc.redis (eq $v.redis.mode "cluster") }}
- name: REDIS_URL
  value: {{ printf "redis+cluster://%s" (join "," $v.redis.clusterNodes) | quote }}
{{- else if $svc.redis }}
{{ include "tally.secretEnv" (dict "root" $root "env" "REDIS_URL" "key" $v.redis.secretKey "optional" true) }}
{{- end }}
{{- if $svc.grpcPort }}
{{- with $v.auth.jwksURL }}
- name: TALLY_JWKS_URL
  value: {{ . | quote }}
{{- end }}
{{- with $v.auth.issuer }}
- name: TALLY_JWT_ISSUER
  value: {{ . | quote }}
{{- end }}
{{- with $v.auth.audience }}
- name: TALLY_JWT_AUDIENCE
  value: {{ . | quote }}
{{- end }}
{{ include "tally.secretEnv" (dict "root" $root "env" "TALLY_JWT_SECRET" "key" "jwt-secret" "optional" true) }}
{{- if and $svc.calls (eq $v.auth.serviceIdentity "projectedToken") }}
- name: TALLY_SERVICE_TOKEN_FILE
  value: /var/run/secrets/tally/token
{{- else if and $svc.calls (eq $v.auth.serviceIdentity "oauth") }}
- name: TALLY_OAUTH_CLIENT_ID
  value: {{ $v.auth.oauth.clientID | quote }}
{{- with $v.auth.oauth.tokenURL }}
- name: TALLY_OAUTH_TOKEN_URL
  value: {{ . | quote }}
{{- end }}
{{- with $v.auth.oauth.scope }}
- name: TALLY_OAUTH_SCOPE
  value: {{ . | quote }}
{{- end }}
{{ include "tally.secretEnv" (dict "root" $root "env" "TALLY_OAUTH_CLIENT_SECRET" "key" "oauth-client-secret" "optional" false) }}
{{- end }}
{{- end }}
{{- if $svc.stripe }}
{{- with $v.stripe.apiURL }}
- name: TALLY_STRIPE_API_URL
  value: {{ . | quote }}
{{- end }}
- name: TALLY_WEBHOOK_URL
  value: {{ $v.stripe.webhookURL | quote }}
{{ include "tally.secretEnv" (dict "root" $root "env" "STRIPE_SECRET_KEY" "key" "stripe-secret-key" "optional" true) }}
{{ include "tally.secretEnv" (dict "root" $root "env" "STRIPE_WEBHOOK_SECRET" "key" "stripe-webhook-secret" "optional" true) }}
{{- end }}
{{- if $svc.smtp }}
- name: TALLY_SMTP_HOST
  value: {{ $v.smtp.host | quote }}
- name: TALLY_SMTP_PORT
  value: {{ $v.smtp.port | quote }}
- name: TALLY_SMTP_TLS
  value: {{ $v.smtp.tls | quote }}
- name: TALLY_SMTP_FROM
  value: {{ $v.smtp.from | quote }}
{{- with $v.smtp.username }}
- name: TALLY_SMTP_USERNAME
  value: {{ . | quote }}
{{- end }}
{{ include "tally.secretEnv" (dict "root" $root "env" "TALLY_SMTP_PASSWORD" "key" "smtp-password" "optional" true) }}
{{- end }}
{{- if $svc.httpPort }}
{{- with $v.oidc.issuer }}
- name: TALLY_OIDC_ISSUER
  value: {{ . | quote }}
{{- end }}
{{- with $v.oidc.clientID }}
- name: TALLY_OIDC_CLIENT_ID
  value: {{ . | quote }}
{{- end }}
{{- with $v.oidc.redirectURL }}
- name: TALLY_OIDC_REDIRECT_URL
  value: {{ . | quote }}
{{- end }}
{{- with $v.oidc.scopes }}
- name: TALLY_OIDC_SCOPES
  value: {{ . | quote }}
{{- end }}
{{- with $v.corsOrigins }}
- name: TALLY_CORS_ORIGINS
  value: {{ . | quote }}
{{- end }}
- name: TALLY_CONSOLE_DIR
  value: /usr/share/tally/console
{{ include "tally.secretEnv" (dict "root" $root "env" "TALLY_OIDC_CLIENT_SECRET" "key" "oidc-client-secret" "optional" true) }}
{{ include "tally.secretEnv" (dict "root" $root "env" "TALLY_SESSION_KEY" "key" "session-key" "optional" true) }}
{{- end }}
{{- range $k, $val := $svc.env }}
- name: {{ $k }}
  value: {{ $val | quote }}
{{- end }}
{{- with $v.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}
