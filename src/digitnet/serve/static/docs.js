// Offline API reference: renders /openapi.json (endpoints, parameters, bodies, responses) without a CDN.
"use strict";

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
}

function resolve(spec, schema) {
  // Follow local $refs so a schema block shows the fields, not a pointer.
  if (schema && schema.$ref) {
    const path = schema.$ref.replace(/^#\//, "").split("/");
    return path.reduce((obj, key) => (obj ? obj[key] : undefined), spec) || schema;
  }
  return schema;
}

function schemaBlock(spec, schema) {
  const text = JSON.stringify(schema, (key, value) => (value && value.$ref ? resolve(spec, value) : value), 2);
  return el("pre", {}, text);
}

function renderOperation(spec, path, method, op) {
  const card = el("section", { class: "card", id: `${method}-${path}` });
  card.append(el("div", { class: "op-head" },
    el("span", { class: `method ${method}` }, method.toUpperCase()), el("code", {}, path),
    el("span", { class: "op-summary" }, op.summary || "")));
  if (op.description) card.append(el("p", {}, op.description.replace(/`/g, "")));
  if (op.parameters && op.parameters.length) {
    const table = el("table", {}, el("tr", {}, el("th", {}, "parameter"), el("th", {}, "in"),
      el("th", {}, "type"), el("th", {}, "description")));
    for (const p of op.parameters) {
      const s = resolve(spec, p.schema || {});
      const type = s.type || (s.anyOf || []).map((x) => x.type).filter(Boolean).join(" | ");
      table.append(el("tr", {}, el("td", {}, el("code", {}, p.name)), el("td", {}, p.in), el("td", {}, type || ""),
        el("td", {}, p.description || "")));
    }
    card.append(el("h3", {}, "Parameters"), table);
  }
  if (op.requestBody) {
    card.append(el("h3", {}, "Request body"));
    for (const [type, media] of Object.entries(op.requestBody.content || {})) {
      const details = el("details", {}, el("summary", {}, type));
      details.append(schemaBlock(spec, media.schema || {}));
      card.append(details);
    }
  }
  if (op.responses) {
    const table = el("table", {}, el("tr", {}, el("th", {}, "status"), el("th", {}, "meaning")));
    for (const [code, resp] of Object.entries(op.responses)) {
      table.append(el("tr", {}, el("td", { class: `status ${code.startsWith("2") ? "ok" : "bad"}` }, code),
        el("td", {}, resp.description || "")));
    }
    card.append(el("h3", {}, "Responses"), table);
    const ok = op.responses["200"];
    const schema = ok && ok.content && ok.content["application/json"] && ok.content["application/json"].schema;
    if (schema && Object.keys(schema).length) {
      const details = el("details", {}, el("summary", {}, "200 response schema"));
      details.append(schemaBlock(spec, schema));
      card.append(details);
    }
  }
  return card;
}

fetch("/openapi.json").then((r) => r.json()).then((spec) => {
  document.getElementById("api-version").textContent = `${spec.info.title} ${spec.info.version} · OpenAPI ${spec.openapi}`;
  const intro = document.getElementById("intro");
  intro.append(el("h2", {}, "Endpoints"), el("p", {}, (spec.info.description || "").replace(/`/g, "")),
    el("p", {}, "Example: ", el("code", {}, "curl -F file=@digit.png http://127.0.0.1:8000/api/predict")));
  const list = document.getElementById("endpoints");
  for (const [path, ops] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(ops)) list.append(renderOperation(spec, path, method, op));
  }
}).catch((err) => {
  document.getElementById("intro").textContent = `Could not load /openapi.json: ${err}`;
});
