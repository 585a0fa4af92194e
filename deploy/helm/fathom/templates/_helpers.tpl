{{/* Names: <release>-fathom unless the release name already says fathom. */}}
{{- define "fathom.fullname" -}}
{{- if contains "fathom" .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-fathom" .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "fathom.labels" -}}
app.kubernetes.io/name: fathom
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Selector labels of one component (shard, router, build). */}}
{{- define "fathom.selector" -}}
app.kubernetes.io/name: fathom
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "fathom.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* The headless Service the shard pods' DNS names live under. */}}
{{- define "fathom.shardService" -}}
{{ include "fathom.fullname" . }}-shards
{{- end -}}

{{/* The router's --shards: per shard, its replicas' pod DNS names. */}}
{{- define "fathom.shardSpec" -}}
{{- $root := . -}}
{{- $full := include "fathom.fullname" . -}}
{{- $svc := include "fathom.shardService" . -}}
{{- $shards := list -}}
{{- range $i := until (int .Values.collection.shards) -}}
{{- $replicas := list -}}
{{- range $r := until (int $root.Values.collection.replicasPerShard) -}}
{{- $replicas = append $replicas (printf "%s-shard-r%d-%d.%s.%s.svc:%d" $full $r $i $svc $root.Release.Namespace (int $root.Values.shard.grpcPort)) -}}
{{- end -}}
{{- $shards = append $shards (join "|" $replicas) -}}
{{- end -}}
{{- join "," $shards -}}
{{- end -}}

{{/* A flat map as TOML keys (strings quoted). */}}
{{- define "fathom.toml" -}}
{{- range $k, $v := . }}
{{- if kindIs "string" $v }}
{{ $k }} = {{ $v | quote }}
{{- else }}
{{ $k }} = {{ $v }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Container security: non-root, read-only root, no escalation. */}}
{{- define "fathom.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
capabilities:
  drop: ["ALL"]
{{- end -}}

{{- define "fathom.scrapeAnnotations" -}}
{{- if .root.Values.metrics.annotations }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .port | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- end -}}

{{/* Environment and mounts of the sync script (init container and sidecar). */}}
{{- define "fathom.syncContainer" -}}
env:
  - {name: INDEX_ROOT, value: /data/index}
  - {name: BUILDS, value: /builds}
  - {name: VERSION_FILE, value: /etc/fathom-version/version}
  - {name: SYNC_INTERVAL, value: {{ .Values.shard.syncIntervalSeconds | quote }}}
volumeMounts:
  - {name: data, mountPath: /data}
  - {name: builds, mountPath: /builds, readOnly: true}
  - {name: config, mountPath: /etc/fathom, readOnly: true}
  - {name: version, mountPath: /etc/fathom-version, readOnly: true}
{{- end -}}
