// Every workflow type the orchestration worker runs.
export { storagePreflight } from './storage-preflight';
export { powerOnGroup } from './power-on-group';
export { powerOnPlan } from './power-on-plan';
export { domainOperations } from './domain-operations';
export { protect } from './protect';
export { rehydration } from './rehydration';
export { failover } from './failover';
export { continuousFailover } from './continuous-failover';
export { continuousFailback } from './continuous-failback';
export { failback } from './failback';
export { conflictWatch } from './conflict-watch';
export { resolveConflict } from './resolve-conflict';
export { permanentFailover } from './permanent-failover';
export { retireSite } from './retire';
export { drill } from './drill';
export { scheduledDrill } from './scheduled-drill';
export { restore } from './restore';
