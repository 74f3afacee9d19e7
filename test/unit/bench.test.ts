/**
 * `npm run bench` itself: it writes the tracked bench/results.json only when told to (a run to look at figures leaves
 * git clean), and its sections measure actions that really act. The figures are printed, never asserted.
 */
import { strict as assert } from 'assert';
import * as path from 'path';
import { parseOptions, RESULTS_FILE, resultFiles } from '../../bench/main';
import { handlerSection } from '../../bench/sections/handler';

describe('npm run bench: which files a run writes', () => {
  it('a full run writes no file unless told to (it used to rewrite bench/results.json every time)', () => {
    assert.deepEqual(resultFiles(parseOptions([])), []);
    assert.deepEqual(resultFiles(parseOptions(['--quick', '--json'])), []);
  });

  it('--write-results writes bench/results.json; --out FILE writes FILE, and both may be given', () => {
    assert.deepEqual(resultFiles(parseOptions(['--write-results'])), [RESULTS_FILE]);
    assert.deepEqual(resultFiles(parseOptions(['--out', 'figures.json'])), [path.resolve('figures.json')]);
    assert.deepEqual(resultFiles(parseOptions(['--out=figures.json', '--write-results'])), [path.resolve('figures.json'), RESULTS_FILE]);
  });

  it('refuses --write-results with --only, which would leave the tracked figures partial', () => {
    assert.throws(() => parseOptions(['--only', 'size', '--write-results']), {
      name: 'UsageError',
      message: '--write-results: only a run of every section writes bench/results.json, so that it stays whole (give --out to keep this one)',
    });
  });
});

describe('npm run bench: the handler section', function () {
  this.timeout(30000);

  it('every pod action acts on every alert against the in-memory cluster (network-isolate failed on a stub that answered a create with the body sent)', async () => {
    // When: a run far too short for figures, long enough for every action's whole path
    const section = await handlerSection({ runs: 1, alertsPerRun: 70, decodesPerRun: 1 }, () => undefined);

    // Then
    assert.equal(section.status, 'done');
    assert.deepEqual((section.details as { answers?: unknown } | undefined)?.answers, { 'capture-evidence': ['200 done'], 'delete-pod': ['200 done'], 'label-pod': ['200 done'], 'network-isolate': ['200 done'] });
  });
});
