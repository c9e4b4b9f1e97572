/**
 * Names of what operations create at a site, one place for each: deterministic, so that a retried
 * activity or a replayed workflow finds what an earlier attempt created.
 */

/** The representation VM that holds a VM's target disks while they are rehydrated. */
export const representationVmName = (vm: string) => `repr-${vm}`;
