// Every workflow type the orchestration worker runs.
export { storagePreflight } from './storage-preflight';
