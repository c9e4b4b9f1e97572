import { ApplicationFailure } from '@temporalio/activity';
import { canHeal } from '../common/failures';
import { SiteError } from '../sites/provider';

/**
 * Runs a site call and turns its typed error into a Temporal failure of the same type, so
 * workflows can name it in `nonRetryableErrorTypes` and operators see the site's own words.
 */
export async function atSite<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof SiteError) {
      throw ApplicationFailure.create({ type: error.code, message: error.message, nonRetryable: !canHeal(error.code) });
    }
    throw error;
  }
}
