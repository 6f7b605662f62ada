{{/* Names, labels and the gateway config: the pieces every template shares. */}}

{{- define "token-gateway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's base name; objects of one part append a suffix (-redis, -<worker group>). */}}
{{- define "token-gateway.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "token-gateway.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "token-gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: token-gateway
{{- end -}}

{{/* Selector labels of one component: call with (dict "ctx" $ "component" "gateway"). */}}
{{- define "token-gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "token-gateway.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/*
Pod template labels: the selector labels only (plus part-of), so a chart upgrade that changes
nothing in a pod does not restart it (a vLLM pod takes minutes to load its weights).
*/}}
{{- define "token-gateway.podLabels" -}}
{{ include "token-gateway.selectorLabels" . }}
app.kubernetes.io/part-of: token-gateway
{{- end -}}

{{- define "token-gateway.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "token-gateway.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "token-gateway.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "token-gateway.masterKeySecret" -}}
{{- default (printf "%s-master-key" (include "token-gateway.fullname" .)) .Values.masterKey.existingSecret -}}
{{- end -}}

{{- define "token-gateway.redisName" -}}
{{- printf "%s-redis" (include "token-gateway.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "token-gateway.redisSecret" -}}
{{- default (include "token-gateway.redisName" .) .Values.redis.bundled.auth.existingSecret -}}
{{- end -}}

{{/*
Refuse values that would run a broken install: the embedded store lives in one process, so
it cannot back more than one replica, an autoscaler, or several uvicorn workers.
*/}}
{{- define "token-gateway.checks" -}}
{{- if eq .Values.redis.mode "embedded" -}}
{{- if or (gt (int .Values.replicaCount) 1) .Values.autoscaling.enabled (gt (int .Values.processes) 1) -}}
{{- fail "redis.mode embedded keeps keys, budgets, spend and cache inside one gateway process, so it runs exactly one replica with one process: set replicaCount: 1, processes: 1 and autoscaling.enabled: false, or use redis.mode bundled (one Redis pod) or external (production)" -}}
{{- end -}}
{{- end -}}
{{- if eq .Values.redis.mode "external" -}}
{{- $e := .Values.redis.external -}}
{{- if not (or $e.urlSecret.name $e.url $e.sentinel.hosts) -}}
{{- fail "redis.mode external needs redis.external.urlSecret.name, redis.external.url or redis.external.sentinel.hosts" -}}
{{- end -}}
{{- end -}}
{{- if .Values.workers.enabled -}}
{{- $seen := dict -}}
{{- range .Values.config.deployments -}}
{{- $_ := set $seen .name "config.deployments" -}}
{{- end -}}
{{- range .Values.workers.groups -}}
{{- if hasKey $seen .name -}}
{{- fail (printf "workers.groups: the name %q is already taken (in %s); each group is a gateway deployment of its own name" .name (get $seen .name)) -}}
{{- end -}}
{{- $_ := set $seen .name "workers.groups" -}}
{{- end -}}
{{- end -}}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) -}}
{{- fail "autoscaling.minReplicas is larger than autoscaling.maxReplicas" -}}
{{- end -}}
{{- end -}}

{{/* A worker group's names: call with (dict "ctx" $ "group" $group). */}}
{{- define "token-gateway.workerName" -}}
{{- $name := printf "%s-%s" (include "token-gateway.fullname" .ctx) .group.name -}}
{{- if gt (len $name) 63 -}}
{{- fail (printf "worker group %q: the object name %q is longer than 63 characters; shorten the group name or set fullnameOverride" .group.name $name) -}}
{{- end -}}
{{- $name -}}
{{- end -}}

{{/* The Hugging Face model id a worker group serves. */}}
{{- define "token-gateway.workerModel" -}}
{{- $m := .model -}}
{{- if $m.name -}}
{{- $m.name -}}
{{- else -}}
{{- $sizes := dict "Instruct" (list "0.5B" "1.5B" "3B" "7B" "14B" "32B" "72B") "Coder" (list "0.5B" "1.5B" "3B" "7B" "14B" "32B") "Math" (list "1.5B" "7B" "72B") -}}
{{- if not (has $m.size (get $sizes $m.variant)) -}}
{{- fail (printf "worker group %q: Qwen2.5 %s comes in %s, not %s (or set model.name)" .name $m.variant (join ", " (get $sizes $m.variant)) $m.size) -}}
{{- end -}}
{{- if eq $m.variant "Instruct" -}}
{{- printf "Qwen/Qwen2.5-%s-Instruct" $m.size -}}
{{- else -}}
{{- printf "Qwen/Qwen2.5-%s-%s-Instruct" $m.variant $m.size -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
The gateway's config file: .Values.config as written, plus the Redis URL from the environment
(the Secret stays out of the ConfigMap) and one DNS-discovered deployment per worker group.
*/}}
{{- define "token-gateway.config" -}}
{{- $config := deepCopy .Values.config -}}
{{- if ne .Values.redis.mode "embedded" -}}
{{- $accounting := deepCopy (default (dict) $config.accounting) -}}
{{- $_ := set $accounting "redis_url" "${REDIS_URL}" -}}
{{- $_ := set $config "accounting" $accounting -}}
{{- end -}}
{{- $deployments := list -}}
{{- if .Values.workers.enabled -}}
{{- range .Values.workers.groups -}}
{{- with merge (deepCopy .) (deepCopy $.Values.workers.groupDefaults) -}}
{{- $service := include "token-gateway.workerName" (dict "ctx" $ "group" .) -}}
{{- $dns := printf "%s.%s.svc.%s" $service $.Release.Namespace $.Values.clusterDomain -}}
{{- $deployment := dict
    "name" .name
    "kind" "openai"
    "model" (include "token-gateway.workerModel" .)
    "local" true
    "gpu_hour_usd" .gpu.hourUsd
    "gpus" .tensorParallelSize
    "gpu" .gpu.type
    "context_window" .maxModelLen
    "max_concurrency" .maxNumSeqs
    "discovery" (dict "dns" $dns "port" $.Values.workers.port "interval_s" $.Values.workers.discoveryIntervalSeconds "path" "/v1")
-}}
{{- $deployments = append $deployments $deployment -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $_ := set $config "deployments" (concat $deployments (default (list) $config.deployments)) -}}
{{- toYaml $config -}}
{{- end -}}
