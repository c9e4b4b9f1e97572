import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MALLOC_SETTINGS, missingMallocSettings, withMallocSettings } from '../../common/malloc-settings';

describe('malloc settings of the product processes', () => {
  it('adds the mmap threshold to an environment, keeping a value the operator set', () => {
    assert.equal(withMallocSettings({ PATH: '/bin' }).MALLOC_MMAP_THRESHOLD_, '131072');
    assert.equal(withMallocSettings({ PATH: '/bin' }).PATH, '/bin');
    assert.equal(withMallocSettings({ MALLOC_MMAP_THRESHOLD_: '65536' }).MALLOC_MMAP_THRESHOLD_, '65536');
  });

  it('names the settings a process was started without (glibc reads them only at start)', { skip: process.platform !== 'linux' }, () => {
    assert.deepEqual(missingMallocSettings({}), Object.keys(MALLOC_SETTINGS));
    assert.deepEqual(missingMallocSettings(withMallocSettings({})), []);
  });
});
