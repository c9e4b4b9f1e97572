/** What a drill schedule starts (`POST /domains/{domain}/drill-schedule`), as its action's arguments. */
export interface ScheduledDrillInput {
  domain: string;
  /** The schedule's id, `drill-schedule/<domain>`: the drill is requested by `schedule <id>`. */
  schedule: string;
  /** Default: the runbook named like the domain, its latest version at each run. */
  runbook?: string;
  version?: number;
  /** How long each drill stays up after its checks; default `0s`. */
  keepFor?: string;
}

export interface DrillRequested {
  /** The drill the desk started. */
  workflowId: string;
  requestedBy: string;
}

/** The orchestration worker's activity that asks the domain's desk for the drill (requests/scheduled-drill-activities.ts). */
export interface ScheduledDrillActivities {
  /** Refused now (another operation runs, the mode or the runbook does not allow a drill): fails with type DRILL_SKIPPED, naming why. */
  requestDrill(input: ScheduledDrillInput & { /** The same for every attempt of one run: a retry finds the drill the first attempt started. */ requestId: string }): Promise<DrillRequested>;
}

/** The failure type of a scheduled run that could not start its drill; its message says why. */
export const DRILL_SKIPPED = 'DrillSkipped';

/** Requested by, for the drills a schedule starts. */
export const scheduledRequester = (schedule: string) => `schedule ${schedule}`;
