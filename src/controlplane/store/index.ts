/** mesh-control's resource store: the contract and the embedded file-backed implementation. */
export * from './types.js'
export { FileStore, STATE_FILE, type FileStoreOptions } from './file-store.js'
export { writeFileAtomic, removeStaleTempFiles } from './atomic.js'
