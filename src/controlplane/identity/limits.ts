/**
 * Limits of the workload certificate TTL, shared by mesh-control's flags and
 * MeshControl. A module of its own so the CLI can check flags without loading the
 * native binding or gRPC.
 */
export const DEFAULT_CERT_TTL_MS = 24 * 3_600_000
/** Short enough for rotation tests, long enough that renewal at 70 % is not a busy loop. */
export const MIN_CERT_TTL_MS = 60_000
/** Workload certificates are short-lived by design; a month is the longest on offer. */
export const MAX_CERT_TTL_MS = 30 * 24 * 3_600_000
