{{/*
The gateway's REDIS_URL (and the REDIS_PASSWORD it is built from), as container env entries.
The password comes from a Secret and is spliced in by Kubernetes' $(VAR) expansion, so no
secret is ever written into the ConfigMap or the values.
*/}}
{{- define "token-gateway.redisEnv" -}}
{{- if eq .Values.redis.mode "bundled" }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "token-gateway.redisSecret" . }}
      key: {{ .Values.redis.bundled.auth.key }}
- name: REDIS_URL
  value: {{ printf "redis://:$(REDIS_PASSWORD)@%s:6379/0" (include "token-gateway.redisName" .) | quote }}
{{- else if eq .Values.redis.mode "external" }}
{{- $e := .Values.redis.external }}
{{- if $e.urlSecret.name }}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ $e.urlSecret.name }}
      key: {{ $e.urlSecret.key }}
{{- else }}
{{- $auth := "" }}
{{- if $e.passwordSecret.name }}
{{- $auth = ":$(REDIS_PASSWORD)@" }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $e.passwordSecret.name }}
      key: {{ $e.passwordSecret.key }}
{{- end }}
{{- if $e.sentinel.hosts }}
- name: REDIS_URL
  value: {{ printf "redis+sentinel://%s%s/%s/%d" $auth (join "," $e.sentinel.hosts) $e.sentinel.masterName (int $e.sentinel.db) | quote }}
{{- else }}
{{- $parts := splitn "://" 2 $e.url }}
- name: REDIS_URL
  value: {{ printf "%s://%s%s" $parts._0 $auth $parts._1 | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- end -}}
