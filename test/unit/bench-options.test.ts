/** `npm run bench` writes the tracked bench/results.json only when told to: a run to look at figures leaves git clean. */
import { strict as assert } from 'assert';
import * as path from 'path';
import { parseOptions, RESULTS_FILE, resultFiles } from '../../bench/main';

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
