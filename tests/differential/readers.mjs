// Node's readings of a request body, as a Node upstream would make them: JSON.parse for JSON,
// busboy (what multer and fastify's multipart use) for forms.
//
// One example per line on stdin: {"kind": "json" | "form", "body": <base64>, "content_type"}.
// One answer per line on stdout: {"<reader>": {"model": [...], "stream": [...], "user": [...]}
// or {"error": "..."}}, each list holding every value that reader read for the field.
import { createInterface } from "node:readline";
import busboy from "busboy";

const FIELDS = ["model", "stream", "user"];

function readJson(body) {
  const value = JSON.parse(body.toString("utf8"));
  const read = {};
  for (const name of FIELDS) {
    read[name] = Object.hasOwn(value, name) ? [value[name]] : [];
  }
  return read;
}

function readForm(body, contentType) {
  return new Promise((resolve, reject) => {
    const read = Object.fromEntries(FIELDS.map((name) => [name, []]));
    const files = [];
    const parser = busboy({ headers: { "content-type": contentType }, defParamCharset: "utf8" });
    parser.on("field", (name, value) => {
      if (FIELDS.includes(name)) read[name].push(value);
    });
    parser.on("file", (name, stream) => {
      files.push(name);
      stream.resume();
    });
    parser.on("error", reject);
    parser.on("close", () => resolve({ ...read, files: [...new Set(files)].sort() }));
    parser.end(body);
  });
}

async function answer(example) {
  const body = Buffer.from(example.body, "base64");
  try {
    if (example.kind === "json") return { "node JSON.parse": readJson(body) };
    return { "node busboy": await readForm(body, example.content_type) };
  } catch (error) {
    return { [example.kind === "json" ? "node JSON.parse" : "node busboy"]: { error: String(error) } };
  }
}

for await (const line of createInterface({ input: process.stdin })) {
  process.stdout.write(JSON.stringify(await answer(JSON.parse(line))) + "\n");
}
