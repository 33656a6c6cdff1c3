export { escapeLabelValue, formatBucketBound, formatSampleValue, renderEngineStats } from './engine-stats.js'
export { PROMETHEUS_CONTENT_TYPE, ProxyMetrics } from './proxy-metrics.js'
export type { MetricsSource, ReloadResult } from './proxy-metrics.js'
