// Local OpenID Connect provider for rolegate's interop tests.
//
// Runs the certified `oidc-provider` implementation with a fixed set of
// client_credentials clients and issues RFC 9068 JWT access tokens for the
// resource indicators `api://rolegate` and `api://other`.
//
// Usage:
//   node tests/interop/provider.mjs --port PORT [--keys KEYFILE] [--console-redirect URL]
//
// With --console-redirect, the provider also signs people in for rolegate's console: the
// confidential client `rolegate-console` (authorization code + PKCE, redirect URI URL) and
// oidc-provider's development login and consent pages (any login, any password). The ID token
// carries the account's `roles` (see ACCOUNT_ROLES).
//
// KEYFILE is a JSON Web Key Set with private RSA keys ({"keys": [...]}).
// Without --keys a fresh RSA 2048 key is generated at start. --port 0 picks a
// free port; the issuer is always http://127.0.0.1:<actual port>.
// When listening, exactly one line `READY <issuer>` is printed to stdout.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import { parseArgs } from 'node:util';

// oidc-provider prints development hints unless NODE_ENV is production.
// Set it before the library is loaded (hence the dynamic import below).
process.env.NODE_ENV ??= 'production';

// Keep stdout for the READY line only: library notices go to stderr.
console.info = (...args) => console.error(...args);

// Two expected warnings do not apply to a throwaway test fixture: the
// in-memory storage adapter, and the "Node.js 22+" runtime notice (Node.js 20
// runs everything this fixture uses). Drop them; pass everything else on.
const EXPECTED_WARNINGS = [
  'oidc-provider WARNING: Unsupported runtime',
  'oidc-provider WARNING: a quick start development-only in-memory adapter',
  'oidc-provider WARNING: a quick start development-only feature devInteractions',
];
const warn = console.warn.bind(console);
console.warn = (...args) => {
  const text = String(args[0]).replace(/\x1b\[[0-9;]*m/g, '');
  if (!EXPECTED_WARNINGS.some((prefix) => text.startsWith(prefix))) warn(...args);
};

const { default: Provider, errors } = await import('oidc-provider');

const HOST = '127.0.0.1';

const RESOURCES = {
  'api://rolegate': 'models.read chat.invoke',
  'api://other': 'models.read chat.invoke',
};
const DEFAULT_RESOURCE = 'api://rolegate';
// MCP servers behind a rolegate on loopback: each is its own resource (RFC 8707), named by
// the URL clients reach it at, e.g. http://127.0.0.1:8901/mcp/forge.
const MCP_RESOURCE = /^http:\/\/127\.0\.0\.1:\d{1,5}\/mcp\/[A-Za-z0-9_-]{1,64}$/;
const MCP_SCOPE = 'models.read chat.invoke';

const ALL_SCOPES = [...new Set(Object.values(RESOURCES).join(' ').split(' '))];

const CLIENT_DEFAULTS = {
  grant_types: ['client_credentials'],
  response_types: [],
  redirect_uris: [],
  token_endpoint_auth_method: 'client_secret_basic',
};

const CLIENTS = [
  {
    ...CLIENT_DEFAULTS,
    client_id: 'svc-admin',
    client_secret: 'svc-admin-secret',
    scope: 'chat.invoke models.read',
    roles: ['Gateway.User'],
  },
  {
    ...CLIENT_DEFAULTS,
    client_id: 'svc-scoped',
    client_secret: 'svc-scoped-secret',
    scope: 'chat.invoke',
  },
  {
    ...CLIENT_DEFAULTS,
    client_id: 'svc-none',
    client_secret: 'svc-none-secret',
    // No scope may be granted. oidc-provider rejects `scope: ''` in client
    // metadata ("scope must be a non-empty string if provided") and treats a
    // missing `scope` as "no restriction", so the restriction for this client
    // is enforced in getResourceServerInfo below.
  },
];

// Roles in the ID tokens of console sign-ins, by login; any other login has none.
const ACCOUNT_ROLES = {
  'ops-admin': ['Console.Admin'],
  viewer: ['Console.Viewer'],
};

function consoleClient(redirectUri) {
  return {
    client_id: 'rolegate-console',
    client_secret: 'rolegate-console-secret',
    grant_types: ['authorization_code'],
    response_types: ['code'],
    redirect_uris: [redirectUri],
    token_endpoint_auth_method: 'client_secret_post',
  };
}

function usage(message) {
  process.stderr.write(`${message}\nusage: node provider.mjs --port PORT [--keys KEYFILE] [--console-redirect URL]\n`);
  process.exit(2);
}

function parseCli(argv) {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        port: { type: 'string', default: '0' },
        keys: { type: 'string' },
        'console-redirect': { type: 'string' },
      },
      strict: true,
    }));
  } catch (err) {
    usage(err.message);
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    usage(`invalid --port: ${values.port}`);
  }
  return { port, keys: values.keys, consoleRedirect: values['console-redirect'] };
}

function loadJwks(path) {
  const jwks = JSON.parse(fs.readFileSync(path, 'utf8'));
  if (!jwks || !Array.isArray(jwks.keys) || jwks.keys.length === 0) {
    throw new Error(`${path}: expected a JWK Set with a non-empty "keys" array`);
  }
  for (const jwk of jwks.keys) {
    if (jwk.kty !== 'RSA' || !jwk.d) {
      throw new Error(`${path}: every key must be a private RSA JWK`);
    }
  }
  return jwks;
}

function generateJwks() {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  return {
    keys: [{
      ...jwk, kid: `gen-${crypto.randomBytes(6).toString('hex')}`, alg: 'RS256', use: 'sig',
    }],
  };
}

function clientScope(client) {
  // Scope values a client may receive: its registered `scope` metadata.
  return new Set((client?.scope || '').split(' ').filter(Boolean));
}

function buildConfiguration(jwks, consoleRedirect) {
  return {
    clients: consoleRedirect ? [...CLIENTS, consoleClient(consoleRedirect)] : CLIENTS,
    // Console sign-ins: the account's roles go in the ID token itself (not only userinfo).
    async findAccount(ctx, sub) {
      return {
        accountId: sub,
        async claims() { return { sub, roles: ACCOUNT_ROLES[sub] ?? [] }; },
      };
    },
    claims: { openid: ['sub'], profile: ['roles'] },
    conformIdTokenClaims: false,
    jwks,
    // Resource server scopes must be known to the provider so that client
    // `scope` metadata validates and requests outside it are refused.
    scopes: ['openid', ...ALL_SCOPES],
    extraClientMetadata: {
      properties: ['roles'],
      validator(ctx, key, value) {
        if (key === 'roles' && value !== undefined) {
          if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) {
            throw new TypeError('roles must be an array of strings');
          }
        }
      },
    },
    async extraTokenClaims(ctx, token) {
      const client = token.client ?? (token.clientId ? await ctx.oidc.provider.Client.find(token.clientId) : undefined);
      if (client?.roles?.length) {
        return { roles: [...client.roles] };
      }
      return undefined;
    },
    features: {
      clientCredentials: { enabled: true },
      devInteractions: { enabled: Boolean(consoleRedirect) },
      introspection: { enabled: true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => DEFAULT_RESOURCE,
        useGrantedResource: () => true,
        getResourceServerInfo(ctx, resourceIndicator, client) {
          const scope = RESOURCES[resourceIndicator]
            ?? (MCP_RESOURCE.test(resourceIndicator) ? MCP_SCOPE : undefined);
          if (scope === undefined) {
            throw new errors.InvalidTarget();
          }
          const allowed = clientScope(client);
          // Refuse requested resource scope values outside the client's
          // registered scope, the same way oidc-provider does for clients
          // that have `scope` metadata.
          const requested = (ctx.oidc.params?.scope || '').split(' ');
          const denied = requested.find((s) => scope.split(' ').includes(s) && !allowed.has(s));
          if (denied) {
            throw new errors.InvalidScope('requested scope is not allowed', denied);
          }
          return {
            // The resource's scope values this client is registered for.
            scope: scope.split(' ').filter((s) => allowed.has(s)).join(' '),
            audience: resourceIndicator,
            accessTokenFormat: 'jwt',
            accessTokenTTL: 300,
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
    ttl: {
      AccessToken: 300,
      ClientCredentials: 300,
    },
    cookies: {
      keys: [crypto.randomBytes(32).toString('base64url')],
    },
    // The development interactions' own pages when --console-redirect is given; otherwise
    // unused (no interactive flows), set so the provider has no defaults to warn about.
    interactions: {
      url: (ctx, interaction) => `/interaction/${interaction.uid}`,
    },
    renderError(ctx, out) {
      ctx.type = 'json';
      ctx.body = out;
    },
  };
}

async function main() {
  const { port, keys, consoleRedirect } = parseCli(process.argv.slice(2));
  const jwks = keys ? loadJwks(keys) : generateJwks();

  // Listen first so that --port 0 works: the issuer must carry the real port.
  let handler = (req, res) => {
    res.statusCode = 503;
    res.end();
  };
  const server = http.createServer((req, res) => handler(req, res));
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, HOST, resolve);
  });
  const issuer = `http://${HOST}:${server.address().port}`;

  const provider = new Provider(issuer, buildConfiguration(jwks, consoleRedirect));
  provider.on('server_error', (ctx, err) => {
    process.stderr.write(`server_error: ${err?.stack || err}\n`);
  });
  handler = provider.callback();

  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    server.close(() => process.exit(0));
    server.closeAllConnections();
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);

  process.stdout.write(`READY ${issuer}\n`);
}

main().catch((err) => {
  process.stderr.write(`${err?.stack || err}\n`);
  process.exit(1);
});
