// A third-party gRPC client for the Intermediate that knows no .proto file:
// it asks the server's reflection service (grpc.reflection.v1alpha, through
// the npm package grpc-js-reflection-client) for every descriptor it needs and
// talks to the server with @grpc/grpc-js over mutual TLS.
//
// Two uses:
//   node reflection_client.js test --address A --ca CA --cert CRT --key KEY \
//       --tenant T --connector C
//     The end-to-end check run by tests/reflection_client_test.sh: lists the
//     services, loads ferry.v1.Admin by reflection, registers a service from a
//     JSON object, checks the error codes of a duplicate and of a bad name,
//     lists the services and calls grpc.health.v1.Health/Check. Exits 0 when
//     every answer is the expected one, 1 (with the reason) otherwise.
//   node reflection_client.js list --address A --ca CA --cert CRT --key KEY
//   node reflection_client.js call --address A --ca CA --cert CRT --key KEY \
//       ferry.v1.Admin/ListServices '{"tenant": "acme"}'
//     A small grpcurl stand-in for docs/API.md: prints the service list, or
//     the JSON answer of one unary call (request fields by their proto names).
//     Exits 0 on OK; on an error prints "ERROR: <CODE>: <message>" and exits 1.
//
// Modules come from NODE_PATH (the test sets it to the npm ci directory made
// by scripts/setup.sh), so this file needs no node_modules beside it.
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const grpc = require('@grpc/grpc-js');
const {GrpcReflection} = require('grpc-js-reflection-client');

const kDeadlineMs = 10000;
const kLoaderOptions = {keepCase: true, enums: String, longs: String, defaults: true, oneofs: true};


function usage(message) {
  process.stderr.write(
      `${message}\nusage: node reflection_client.js test|list|call --address HOST:PORT ` +
      '--ca CA.crt --cert CLIENT.crt --key CLIENT.key [--server_name NAME] ' +
      '[--tenant T --connector C] [SERVICE/METHOD [JSON]]\n');
  process.exit(2);
}

function parseArgs(argv) {
  const args = {positional: []};
  for (let i = 0; i < argv.length; ++i) {
    const arg = argv[i];
    if (!arg.startsWith('--')) {
      args.positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    if (eq > 0) {
      args[arg.slice(2, eq)] = arg.slice(eq + 1);
    } else if (i + 1 < argv.length) {
      args[arg.slice(2)] = argv[++i];
    } else {
      usage(`flag ${arg} needs a value`);
    }
  }
  return args;
}

// The channel credentials and options every client here uses: the fabric's CA
// as the only root, and the caller's certificate for mutual TLS.
function channelSetup(args) {
  for (const flag of ['address', 'ca', 'cert', 'key']) {
    if (!args[flag]) usage(`missing --${flag}`);
  }
  const credentials = grpc.credentials.createSsl(
      fs.readFileSync(args.ca), fs.readFileSync(args.key), fs.readFileSync(args.cert));
  const options = {};
  if (args.server_name) options['grpc.ssl_target_name_override'] = args.server_name;
  return {credentials, options};
}

function deadline() {
  return new Date(Date.now() + kDeadlineMs);
}

// Calls a unary method of a grpc-js client and resolves with the answer, or
// rejects with the grpc-js error (which carries .code and .details).
function unary(client, method, request) {
  return new Promise((resolve, reject) => {
    client[method](request, {deadline: deadline()}, (err, response) => {
      if (err) reject(err);
      else resolve(response);
    });
  });
}

// Resolves `symbol` (a fully qualified service name) to a grpc-js client
// constructor, from reflection only.
async function serviceFromReflection(reflection, symbol) {
  const descriptor = await reflection.getDescriptorBySymbol(symbol, {deadline: deadline()});
  let object = descriptor.getPackageObject(kLoaderOptions);
  for (const part of symbol.split('.')) {
    object = object[part];
    if (object === undefined) throw new Error(`reflection gave no definition of ${symbol}`);
  }
  return object;
}

// The Health client, resolved by reflection only: the Intermediate links the
// grpc.health.v1 descriptors so that no .proto file is needed for it either.
async function healthService(reflection) {
  return {Client: await serviceFromReflection(reflection, 'grpc.health.v1.Health'),
          source: 'reflection'};
}

function codeName(code) {
  return Object.keys(grpc.status).find((name) => grpc.status[name] === code) || String(code);
}

// Runs `call` and asserts that it fails with `code` and a message containing
// `fragment`.
async function expectError(call, code, fragment, what) {
  let error = null;
  try {
    await call();
  } catch (err) {
    error = err;
  }
  assert.ok(error, `${what}: expected ${codeName(code)}, the call succeeded`);
  assert.equal(codeName(error.code), codeName(code), `${what}: ${error.details}`);
  assert.ok(error.details.includes(fragment),
            `${what}: message "${error.details}" does not mention "${fragment}"`);
  console.log(`ok: ${what} -> ${codeName(error.code)}: ${error.details}`);
}

async function runTest(args) {
  for (const flag of ['tenant', 'connector']) {
    if (!args[flag]) usage(`test needs --${flag}`);
  }
  const {credentials, options} = channelSetup(args);
  const reflection = new GrpcReflection(args.address, credentials, options, 'v1alpha');

  const services = await reflection.listServices('*', {deadline: deadline()});
  console.log(`reflection lists: ${services.join(', ')}`);
  for (const wanted of ['ferry.v1.Admin', 'ferry.v1.Registry', 'ferry.v1.Routes',
                        'grpc.health.v1.Health']) {
    assert.ok(services.includes(wanted), `reflection does not list ${wanted}`);
  }

  const Admin = await serviceFromReflection(reflection, 'ferry.v1.Admin');
  const methods = Object.keys(Admin.service);
  for (const wanted of ['RegisterService', 'DeregisterService', 'ListServices', 'GetStatus',
                        'ListLeases', 'ListSessions']) {
    assert.ok(methods.includes(wanted), `ferry.v1.Admin by reflection lacks ${wanted}`);
  }
  console.log(`ok: ferry.v1.Admin loaded by reflection: ${methods.join(', ')}`);
  const admin = new Admin(args.address, credentials, options);

  // The request as an operator would write it in JSON; the tenant is left out
  // and must default to the caller's (the admin certificate's) tenant.
  const request = JSON.parse(`{
    "service": {
      "name": "ollama-api",
      "protocol": "PROTOCOL_TCP",
      "backends": [{"address": "127.0.0.1:11434"}],
      "connector": "${args.connector}"
    }
  }`);
  const registered = (await unary(admin, 'RegisterService', request)).service;
  assert.ok(registered, 'RegisterService answered without a service');
  assert.equal(registered.spec.name, 'ollama-api');
  assert.equal(registered.spec.tenant, args.tenant, 'tenant must default to the caller\'s');
  assert.equal(registered.spec.protocol, 'PROTOCOL_TCP');
  assert.equal(registered.spec.connector, args.connector);
  assert.deepEqual(registered.spec.backends.map((b) => b.address), ['127.0.0.1:11434']);
  assert.equal(registered.origin, 'api');
  assert.ok(registered.id > 0, `service id ${registered.id} is not positive`);
  // The connector is not connected, so nobody serves the service yet.
  assert.equal(registered.connector, '', 'no connector is connected, yet one serves it');
  assert.equal(registered.health, 'HEALTH_STATE_UNHEALTHY');
  console.log(`ok: RegisterService -> id ${registered.id}, tenant ${registered.spec.tenant}, ` +
              `health ${registered.health}`);

  await expectError(() => unary(admin, 'RegisterService', request), grpc.status.ALREADY_EXISTS,
                    'ollama-api', 'RegisterService of the same name again');
  await expectError(
      () => unary(admin, 'RegisterService',
                  {service: {...request.service, name: 'Not_A_Label'}}),
      grpc.status.INVALID_ARGUMENT, 'service.name', 'RegisterService with a bad name');
  await expectError(
      () => unary(admin, 'RegisterService',
                  {service: {...request.service, name: 'other-api', tenant: 'globex'}}),
      grpc.status.PERMISSION_DENIED, 'globex', 'RegisterService for another tenant');

  const listed = (await unary(admin, 'ListServices', {})).services;
  const names = listed.map((s) => `${s.spec.tenant}/${s.spec.name}`);
  assert.deepEqual(names, [`${args.tenant}/ollama-api`], `ListServices answered ${names}`);
  assert.equal(listed[0].id, registered.id, 'ListServices shows another id');
  assert.equal(listed[0].spec.connector, args.connector);
  console.log(`ok: ListServices -> ${names.join(', ')}`);

  const status = await unary(admin, 'GetStatus', {});
  assert.equal(status.services_unhealthy, 1, `GetStatus: ${JSON.stringify(status)}`);
  assert.ok(Number(status.route_version) >= 2, `route version ${status.route_version}`);
  console.log(`ok: GetStatus -> route version ${status.route_version}, ` +
              `trust domain ${status.trust_domain}`);

  const {Client: Health, source} = await healthService(reflection);
  console.log(`Health definition from: ${source}`);
  const health = new Health(args.address, credentials, options);
  const serving = await unary(health, 'Check', {service: ''});
  assert.equal(serving.status, 'SERVING', `Health/Check answered ${JSON.stringify(serving)}`);
  console.log('ok: grpc.health.v1.Health/Check -> SERVING');
  await expectError(() => unary(health, 'Check', {service: 'no.such.Service'}),
                    grpc.status.NOT_FOUND, '', 'Health/Check of an unknown service');

  admin.close();
  health.close();
  console.log('reflection client test: all checks passed');
}

async function runList(args) {
  const {credentials, options} = channelSetup(args);
  const reflection = new GrpcReflection(args.address, credentials, options, 'v1alpha');
  for (const name of await reflection.listServices('*', {deadline: deadline()})) {
    console.log(name);
  }
}

async function runCall(args) {
  const [target, json = '{}'] = args.positional;
  if (!target || !target.includes('/')) usage('call needs SERVICE/METHOD, e.g. ferry.v1.Admin/GetStatus');
  const [serviceName, method] = target.split('/');
  const {credentials, options} = channelSetup(args);
  const reflection = new GrpcReflection(args.address, credentials, options, 'v1alpha');
  const Service = serviceName === 'grpc.health.v1.Health' ?
      (await healthService(reflection)).Client :
      await serviceFromReflection(reflection, serviceName);
  if (!Service.service[method]) usage(`${serviceName} has no method ${method}`);
  const client = new Service(args.address, credentials, options);
  try {
    console.log(JSON.stringify(await unary(client, method, JSON.parse(json)), null, 2));
  } catch (err) {
    if (err.code === undefined) throw err;
    console.log(`ERROR: ${codeName(err.code)}: ${err.details}`);
    process.exitCode = 1;
  }
  client.close();
}

async function main() {
  const args = parseArgs(process.argv.slice(3));
  switch (process.argv[2]) {
    case 'test':
      return runTest(args);
    case 'list':
      return runList(args);
    case 'call':
      return runCall(args);
    default:
      usage(`unknown command "${process.argv[2] || ''}"`);
  }
}

main().then(
    () => process.exit(process.exitCode || 0),
    (err) => {
      console.error(`FAILED: ${err.stack || err}`);
      process.exit(1);
    });
