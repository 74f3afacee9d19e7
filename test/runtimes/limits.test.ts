/**
 * The runtime's own bounds (README: the runtime's limits): read from the environment at start, the defaults when a
 * variable is unset, and a refusal naming the variable and the value when it makes no sense, rather than a runtime
 * that starts unbounded.
 */
import { strict as assert } from 'assert';
import { printable } from '../../lib/text';
import { DEFAULT_LIMITS, limitsOf, logText } from '../../runtime/server';

describe("the runtime's limits, from its environment", () => {
  it('takes the defaults when no variable is set', () => {
    assert.deepEqual(limitsOf({}), {
      headersTimeoutMs: DEFAULT_LIMITS.REQ_HEADERS_TIMEOUT * 1000,
      bodyTimeoutMs: DEFAULT_LIMITS.REQ_BODY_TIMEOUT * 1000,
      keepAliveTimeoutMs: DEFAULT_LIMITS.KEEPALIVE_TIMEOUT * 1000,
      maxConnections: DEFAULT_LIMITS.MAX_CONNECTIONS,
      maxPipelined: DEFAULT_LIMITS.MAX_PIPELINED_REQUESTS,
    });
  });

  it('takes each variable, seconds as decimals', () => {
    const env = { REQ_HEADERS_TIMEOUT: '2.5', REQ_BODY_TIMEOUT: '30', KEEPALIVE_TIMEOUT: '65', MAX_CONNECTIONS: '1000', MAX_PIPELINED_REQUESTS: '1' };
    assert.deepEqual(limitsOf(env), { headersTimeoutMs: 2500, bodyTimeoutMs: 30000, keepAliveTimeoutMs: 65000, maxConnections: 1000, maxPipelined: 1 });
  });

  for (const [name, value, message] of [
    ['MAX_CONNECTIONS', 'lots', "MAX_CONNECTIONS must be a whole number above 0, got 'lots'"],
    ['MAX_CONNECTIONS', '0', "MAX_CONNECTIONS must be a whole number above 0, got '0'"],
    ['MAX_PIPELINED_REQUESTS', '1.5', "MAX_PIPELINED_REQUESTS must be a whole number above 0, got '1.5'"],
    ['REQ_BODY_TIMEOUT', '-1', "REQ_BODY_TIMEOUT must be a number of seconds above 0, got '-1'"],
    ['REQ_HEADERS_TIMEOUT', 'Infinity', "REQ_HEADERS_TIMEOUT must be a number of seconds above 0, got 'Infinity'"],
    ['KEEPALIVE_TIMEOUT', '5\u202e', "KEEPALIVE_TIMEOUT must be a number of seconds above 0, got '5\\u202e'"],
  ] as const) {
    it(`refuses ${name}=${printable(JSON.stringify(value))}, naming the variable and the value`, () => {
      assert.throws(() => limitsOf({ [name]: value }), { message });
    });
  }
});

describe("the access log's escaping of request text", () => {
  it('escapes quotes and backslashes as a combined-log writer does, and writes controls and bidi as escapes', () => {
    assert.equal(logText('a"b\\c'), 'a\\"b\\\\c');
    assert.equal(logText('x\u009b31m\u202e\n'), 'x\\u009b31m\\u202e\\u000a');
  });

  it('leaves no way to close the quoted field: every quote it writes is escaped', () => {
    const written = logText('" 200 0 "-" "forged\\"');
    assert.equal(written.replace(/\\\\/g, '').replace(/\\"/g, '').includes('"'), false);
  });
});
