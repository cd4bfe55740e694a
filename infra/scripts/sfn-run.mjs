#!/usr/bin/env node
// Runs one execution of an ASL definition with aws-local-stepfunctions and prints its outcome as
// one JSON line on stdout:
//   {"status":"SUCCEEDED","output":...,"states":[...]}
//   {"status":"FAILED","error":"...","cause":"...","states":[...]}
// "states" lists the states entered, in order, so a test can check the path taken.
//
// Usage:
//   node infra/scripts/sfn-run.mjs --definition statemachine/correlation.asl.json \
//     --substitutions '{"BeginFunctionArn":"arn:aws:lambda:us-east-1:000000000000:function:begin",...}' \
//     --input '{"runId":"r-1"}' [--context '{"StateMachine":{"Id":"arn:..."}}'] [--real-waits]
//
// Lambda calls (and anything else a Task's Resource names: the tool sends every Task to Lambda's
// Invoke API with the Resource as the function name) go to AWS_ENDPOINT_URL_LAMBDA when set.
// Wait states and Retry pauses take 0 ms unless --real-waits is given: the caller emulates time.
// Exit code: 0 when the execution ran (whatever its outcome), 1 on a usage or definition error.

import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

// aws-local-stepfunctions 3.x calls Promise.withResolvers, which Node 20 lacks.
if (typeof Promise.withResolvers !== "function") {
  Promise.withResolvers = function withResolvers() {
    let resolve;
    let reject;
    const promise = new this((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
}

const { StateMachine } = await import("aws-local-stepfunctions");

function fail(message) {
  process.stderr.write(`sfn-run: ${message}\n`);
  process.exit(1);
}

let args;
try {
  ({ values: args } = parseArgs({
    options: {
      definition: { type: "string" },
      substitutions: { type: "string", default: "{}" },
      input: { type: "string", default: "{}" },
      context: { type: "string", default: "{}" },
      "real-waits": { type: "boolean", default: false },
    },
  }));
} catch (err) {
  fail(err.message);
}
if (!args.definition) fail("--definition is required");

function parseJSON(name, text) {
  try {
    return JSON.parse(text);
  } catch (err) {
    fail(`--${name} is not JSON: ${err.message}`);
  }
}

const substitutions = parseJSON("substitutions", args.substitutions);
let text;
try {
  text = readFileSync(args.definition, "utf8");
} catch (err) {
  fail(`read ${args.definition}: ${err.message}`);
}
// DefinitionSubstitutions, as CloudFormation applies them: ${Name} -> value.
const missing = new Set();
text = text.replace(/\$\{([A-Za-z0-9_]+)\}/g, (whole, name) => {
  if (!(name in substitutions)) {
    missing.add(name);
    return whole;
  }
  return String(substitutions[name]);
});
if (missing.size > 0) fail(`no substitution for ${[...missing].join(", ")}`);
const definition = parseJSON("definition", text);

const waitTimeOverrides = {};
const retryIntervalOverrides = {};
if (!args["real-waits"]) {
  for (const [name, state] of Object.entries(definition.States)) {
    if (state.Type === "Wait") waitTimeOverrides[name] = 0;
    if (Array.isArray(state.Retry)) retryIntervalOverrides[name] = 0;
  }
}

let machine;
try {
  machine = new StateMachine(definition);
} catch (err) {
  fail(err.message);
}

const execution = machine.run(parseJSON("input", args.input), {
  overrides: { waitTimeOverrides, retryIntervalOverrides },
  context: parseJSON("context", args.context),
});

const states = [];
const collect = (async () => {
  for await (const event of execution.eventLogs) {
    if (event.type === "StateEntered") states.push(event.state.name);
  }
})();

let outcome;
try {
  const output = await execution.result;
  outcome = { status: "SUCCEEDED", output };
} catch (err) {
  const cause = err.cause ?? err;
  outcome = { status: "FAILED", error: cause.name, cause: cause.message };
}
await Promise.race([collect, new Promise((resolve) => setTimeout(resolve, 100))]);
outcome.states = states;
process.stdout.write(JSON.stringify(outcome) + "\n");
