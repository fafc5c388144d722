// harness.mjs runs ODK's own form engine (@getodk/xforms-engine) headless, as
// ODK Collect's stand-in in the OpenRosa bridge tests (openrosa.md §5).
//
// It reads one job as JSON on standard input and writes one answer as JSON on
// standard output:
//
//   job:    (or an array of jobs, answered by an array)
//           {"xform": "<h:html…>",
//            "edit": "<data…>"           (optional: open this instance for editing, as Collect does),
//            "steps": [{"ref": "/data/x", "value": "…"}      (input, trigger, select1),
//                      {"ref": "/data/m", "values": ["a"]}   (select),
//                      {"ref": "/data/hh", "add": 2}         (repeat instances),
//                      {"ref": "/data/photo", "file": "a.jpg", "type": "image/jpeg", "text": "…"}]}
//   answer: {"status": "ready"|"pending", "violations": [...], "xml": "<data…>",
//            "files": [{"name", "type", "text"}], "refs": [every node's reference]}
//           or {"error": "…"} (exit status 1).
//
// Loading a form without filling it (steps []) is the minimum bar: every
// generated XForm must load.
import { JSDOM } from 'jsdom';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
globalThis.__dirname = join(here, 'node_modules', '@getodk', 'xforms-engine', 'dist');
const { window } = new JSDOM('');
for (const k of ['DOMParser', 'XMLSerializer', 'Node', 'Element', 'Document', 'XMLDocument', 'document', 'NodeFilter']) {
  globalThis[k] = window[k];
}
const engine = await import('@getodk/xforms-engine');

const readStdin = async () => {
  const chunks = [];
  for await (const c of process.stdin) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8');
};

function walk(node, out) {
  out.push(node);
  const kids = node.currentState.children;
  if (kids) for (const k of kids) walk(k, out);
  return out;
}

function find(root, ref) {
  const n = walk(root, []).find((x) => x.currentState.reference === ref);
  if (!n) throw new Error(`no node ${ref}; nodes: ${walk(root, []).map((x) => x.currentState.reference).join(' ')}`);
  return n;
}

async function runJob(job) {
  let inst;
  if (job.edit) {
    const fd = new FormData();
    fd.append('xml_submission_file', new File([job.edit], 'submission.xml', { type: 'text/xml' }));
    inst = await engine.editInstance(job.xform, { inputType: 'FORM_INSTANCE_INPUT_RESOLVED', data: [fd] });
  } else {
    inst = await engine.createInstance(job.xform);
  }
  const root = inst.root;
  for (const s of job.steps ?? []) {
    const n = find(root, s.ref);
    if (s.add !== undefined) {
      n.addInstances(undefined, s.add);
    } else if (s.values !== undefined) {
      n.selectValues(s.values);
    } else if (s.file !== undefined) {
      n.setValue(new File([Buffer.from(s.text ?? '', 'latin1')], s.file, { type: s.type ?? 'application/octet-stream' }));
    } else if (n.nodeType === 'select1' || (n.nodeType === 'select' && !Array.isArray(s.value))) {
      n.selectValue(s.value);
    } else if (n.nodeType === 'trigger') {
      n.setValue(Boolean(s.value));
    } else {
      n.setValue(s.value);
    }
  }
  const payload = await root.prepareInstancePayload({ payloadType: 'monolithic' });
  const fd = payload.data[0];
  const xmlFile = fd.get('xml_submission_file');
  const files = [];
  for (const [name, v] of fd.entries()) {
    if (name === 'xml_submission_file') continue;
    files.push({ name, type: v.type, text: await v.text() });
  }
  const violations = (payload.violations ?? []).map((v) => ({ ref: v.reference ?? v.nodeId ?? String(v), message: v.violation?.message?.asString ?? '' }));
  return {
    status: payload.status,
    violations,
    xml: await xmlFile.text(),
    files,
    refs: walk(root, []).map((x) => x.currentState.reference),
  };
}

// One process runs many jobs (Node and the engine take seconds to start): a
// job array gives an answer array, each answer {"error"} on its own failure.
async function main() {
  const input = JSON.parse(await readStdin());
  if (!Array.isArray(input)) return runJob(input);
  const out = [];
  for (const job of input) {
    try {
      out.push(await runJob(job));
    } catch (err) {
      out.push({ error: String(err && err.stack ? err.stack : err) });
    }
  }
  return out;
}

main().then(
  (out) => process.stdout.write(JSON.stringify(out)),
  (err) => {
    process.stdout.write(JSON.stringify({ error: String(err && err.stack ? err.stack : err) }));
    process.exitCode = 1;
  },
);
