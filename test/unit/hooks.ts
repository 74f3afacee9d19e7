import nock from 'nock';

// Strict mocking (house style): no real network from unit tests, and no expectation left unmet or unused.
export const mochaHooks = {
  beforeAll() {
    nock.disableNetConnect();
  },
  afterEach() {
    const pending = nock.pendingMocks();
    nock.cleanAll();
    if (pending.length > 0) throw new Error(`nock expectations not met: ${pending.join(', ')}`);
  },
  afterAll() {
    nock.enableNetConnect();
  },
};
