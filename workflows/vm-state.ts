/** Where a VM of the domain is in an operation, from protected at its old site to powered on at its new one. */
export type OperationVmState = 'protected' | 'shutDown' | 'rehydrating' | 'rehydrated' | 'registered' | 'poweredOn' | 'leftPoweredOff' | 'failed' | 'removed';
