import { parseDuration } from './units';

/** What a runbook's `spec.protection` says, with the defaults the schema fills in. */
export interface ProtectionSettings {
  restorePointInterval: string;
  protectionWindow: string;
}

export const PROTECTION_DEFAULTS: ProtectionSettings = { restorePointInterval: '15m', protectionWindow: '7d' };

export interface ProtectionPolicy {
  protectionWindowMs: number;
  restorePointIntervalMs: number;
}

/** The policy a protection runs with; a domain without a runbook is protected with the defaults. */
export function protectionPolicy(settings: ProtectionSettings = PROTECTION_DEFAULTS): ProtectionPolicy {
  return {
    protectionWindowMs: parseDuration(settings.protectionWindow) ?? parseDuration(PROTECTION_DEFAULTS.protectionWindow)!,
    restorePointIntervalMs: parseDuration(settings.restorePointInterval) ?? parseDuration(PROTECTION_DEFAULTS.restorePointInterval)!,
  };
}
