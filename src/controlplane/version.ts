/**
 * The mesh version: the number on every Discovery push and Admin answer, advanced on
 * every change that can alter a push (a resource write, a lease registered, replaced,
 * deregistered or expired, a health transition).
 *
 * It must never go backwards across restarts of one data dir, including kill -9, yet
 * only some of those changes write anything to disk (health transitions write nothing).
 * So the version is handed out below a durable *ceiling* kept in leases.json: on start
 * the version begins at max(persisted ceiling, store revision), above everything a
 * previous run can have handed out, and a new ceiling (current + CEILING_STEP) is made
 * durable before serving and again whenever the version comes within half a step of
 * it. That is one small write per ~CEILING_STEP/2 changes instead of one per change; a
 * restart skips ahead by up to CEILING_STEP, which is harmless (versions are ordered,
 * not counted). Including the store revision keeps a pre-existing store's resource
 * versions at or below the mesh version.
 */
export const CEILING_STEP = 10_000n

export class MeshVersion {
  private current: bigint
  private ceiling: bigint

  /**
   * `persistedCeiling`: the ceiling found in leases.json (0 when none); `storeRevision`:
   * the store's revision. `persistCeiling` must durably record the ceiling it is given.
   */
  constructor(
    persistedCeiling: bigint,
    storeRevision: bigint,
    private readonly persistCeiling: (ceiling: bigint) => void,
  ) {
    this.current = persistedCeiling > storeRevision ? persistedCeiling : storeRevision
    this.ceiling = this.current + CEILING_STEP
  }

  /** The ceiling to persist before serving (the constructor does not write). */
  get initialCeiling(): bigint {
    return this.ceiling
  }

  get value(): bigint {
    return this.current
  }

  toString(): string {
    return this.current.toString()
  }

  /** Moves to the next version and returns it. */
  advance(): bigint {
    this.current += 1n
    if (this.ceiling - this.current < CEILING_STEP / 2n) {
      this.ceiling = this.current + CEILING_STEP
      this.persistCeiling(this.ceiling)
    }
    return this.current
  }

  /** The ceiling to record with any other write of leases.json. */
  get durableCeiling(): bigint {
    return this.ceiling
  }
}
