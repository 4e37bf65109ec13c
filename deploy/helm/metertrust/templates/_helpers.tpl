{{/* The name of a component's objects: <release>-<component>. */}}
{{- define "metertrust.name" -}}
{{- printf "%s-%s" .root.Release.Name .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels selecting a component's pods. */}}
{{- define "metertrust.selector" -}}
app.kubernetes.io/name: metertrust
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Every object's labels. */}}
{{- define "metertrust.labels" -}}
{{ include "metertrust.selector" . }}
app.kubernetes.io/part-of: metertrust
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end -}}

{{- define "metertrust.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The store's DSN for a service's user: no password (PGPASSWORD carries it). */}}
{{- define "metertrust.dsn" -}}
{{- $pg := .root.Values.postgresql -}}
{{- $dsn := printf "postgres://%s@%s:%v/%s?sslmode=%s" .svc.postgresql.user $pg.host $pg.port $pg.database $pg.sslmode -}}
{{- if $pg.caSecret -}}
{{- $dsn = printf "%s&sslrootcert=/etc/metertrust/postgresql/ca.crt" $dsn -}}
{{- end -}}
{{- $dsn -}}
{{- end -}}

{{/* The pod annotations: scraping, and the configuration's checksum so that a change rolls the pods. */}}
{{- define "metertrust.podAnnotations" -}}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .svc.metricsPort | quote }}
prometheus.io/path: /metrics
checksum/config: {{ .config | sha256sum }}
{{- end -}}

{{/* The container's security context: nothing to escalate to, nothing to write but its volumes. */}}
{{- define "metertrust.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: [ALL]
{{- end -}}

{{/* PGPASSWORD from the service's own key of the PostgreSQL Secret. */}}
{{- define "metertrust.pgEnv" -}}
- name: PGPASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .root.Values.postgresql.existingSecret }}
      key: {{ .svc.postgresql.passwordKey }}
{{- end -}}

{{/* The PostgreSQL CA certificate, when there is one: volume and mount. */}}
{{- define "metertrust.pgVolume" -}}
{{- if .Values.postgresql.caSecret }}
- name: postgresql-ca
  secret:
    secretName: {{ .Values.postgresql.caSecret }}
    items: [{key: ca.crt, path: ca.crt}]
{{- end }}
{{- end -}}
{{- define "metertrust.pgMount" -}}
{{- if .Values.postgresql.caSecret }}
- name: postgresql-ca
  mountPath: /etc/metertrust/postgresql
  readOnly: true
{{- end }}
{{- end -}}

{{/* The ports every container has: its API and its metrics. */}}
{{- define "metertrust.ports" -}}
- name: api
  containerPort: {{ .port }}
  protocol: TCP
- name: metrics
  containerPort: {{ .metricsPort }}
  protocol: TCP
{{- end -}}
