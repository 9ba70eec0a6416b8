// The sonata-dlt console: read-only views of one bilateral, as the party whose token is given sees it.
// Everything comes from the public APIs with that token; nothing here writes.
"use strict";

const API = {
  ordering: "/mefApi/sonata/productOrderingManagement/v10",
  inventory: "/mefApi/sonata/productInventory/v7",
  billing: "/mefApi/sonata/customerBillManagement/v2",
  bilateral: "/mefApi/sonata/smartBilateral/v1",
  log: "/mefApi/sonata/verifiableLog/v1",
};
const state = { token: sessionStorage.getItem("sonataToken"), me: null, bilateral: null, tab: "orders" };
const $ = (selector) => document.querySelector(selector);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    node.append(child instanceof Node ? child : document.createTextNode(child ?? ""));
  }
  return node;
}

function table(headers, rows) {
  return el("table", {}, el("tr", {}, headers.map((h) => el("th", {}, h))),
    rows.map((cells) => el("tr", {}, cells.map((c) => (c instanceof Node && c.tagName === "TD" ? c : el("td", {}, c))))));
}

class HttpError extends Error {
  constructor(status, body) { super(`HTTP ${status}: ${body.slice(0, 200)}`); this.status = status; }
}

async function get(path, params = {}) {
  const url = new URL(path, location.origin);
  const scope = state.bilateral ? scopeParams(path) : {};
  for (const [k, v] of Object.entries({ ...scope, ...params })) if (v !== undefined) url.searchParams.set(k, v);
  const response = await fetch(url, { headers: { Authorization: `Bearer ${state.token}` } });
  const text = await response.text();
  if (!response.ok) throw new HttpError(response.status, text);
  return text ? JSON.parse(text) : null;
}

// buyerId / sellerId name the bilateral; the bill list has no such parameters in MEF's spec, and a settlement
// spans both bilaterals of two operators.
function scopeParams(path) {
  if (path.startsWith(API.billing) || path.startsWith(`${API.bilateral}/settlement`)) return {};
  const b = state.bilateral;
  return state.me.role === "buyer" ? { sellerId: b.sellerId } : { buyerId: b.buyerId };
}

function amount(m) { return m ? `${Number(m.value).toFixed(2)} ${m.unit}` : ""; }
function tax(bill) {
  const [incl, excl] = [bill.taxIncludedAmount, bill.taxExcludedAmount];
  return incl && excl ? amount({ unit: incl.unit, value: Number(incl.value) - Number(excl.value) }) : "";
}
function period(p) { return p ? `${(p.startDateTime ?? "").slice(0, 10)} to ${(p.endDateTime ?? "").slice(0, 10)}` : ""; }
function stateCell(value) {
  const good = ["settled", "resolved", "completed", "active", "confirmed"].includes(value);
  return el("td", { class: good ? "ok" : "muted" }, value ?? "");
}

function show(...nodes) { $("#view").replaceChildren(...nodes); }
function failure(error) {
  const waiting = error.status === 404 && /not found|no route|Not Found/i.test(error.message);
  return el("p", { class: waiting ? "muted" : "bad" }, waiting ? `Not served by this server yet (${error.message})` : String(error.message));
}

// --- views -----------------------------------------------------------------------------------------------------

async function timeline(resourceType, resourceId) {
  const leaves = await get(`${API.log}/leaf`, { resourceType, resourceId, limit: 1000 });
  return el("ol", { class: "timeline" }, leaves.map((leaf) => {
    const record = JSON.parse(new TextDecoder().decode(Merkle.b64(leaf.record)));
    return el("li", {}, `${record.at} ${record.event} v${record.version} by ${record.actor} (leaf ${leaf.leafIndex})`);
  }));
}

const views = {
  async orders() {
    const orders = await get(`${API.ordering}/productOrder`, { limit: 1000 });
    const rows = orders.map((o) => [
      el("button", { class: "link", onclick: async (event) => {
        const cell = event.target.closest("tr").lastChild;
        cell.replaceChildren(await timeline("productOrder", o.id));
      } }, o.id),
      o.externalId ?? "", o.state, o.orderDate ?? "", el("td", { class: "muted" }, "click the id for its timeline"),
    ]);
    return [el("h2", {}, `Orders (${orders.length})`), table(["id", "externalId", "state", "orderDate", "timeline"], rows)];
  },

  async inventory() {
    const products = await get(`${API.inventory}/product`, { limit: 1000 });
    const rows = products.map((p) => [p.id, p.status, (p.productOffering || {}).id ?? "",
      (p.productConfiguration || {})["@type"] ?? "", p.startDate ?? "", p.terminationDate ?? "",
      (p.relatedSite || []).map((s) => s.id).join(", ")]);
    return [el("h2", {}, `Inventory (${products.length})`),
      table(["id", "status", "offering", "@type", "start", "termination", "sites"], rows)];
  },

  async reconciliation() {
    const list = await get(`${API.bilateral}/reconciliation`, { limit: 100 });
    const parts = [el("h2", {}, `Reconciliations (${list.length})`)];
    for (const rec of list) {
      const s = rec.summary || {};
      parts.push(el("h3", {}, `${rec.id}: ${s.matched ?? 0} matched, ${s.partial ?? 0} partial, ` +
        `${s.buyerOnly ?? 0} buyer-only, ${s.sellerOnly ?? 0} seller-only`));
      const records = await get(`${API.bilateral}/reconciliation/${rec.id}/record`, { limit: 1000 });
      parts.push(table(["service", "classification", "differences"], records.map((r) => [
        r.serviceKey, el("td", { class: r.classification === "matched" ? "ok" : "diff" }, r.classification),
        el("td", {}, (r.differences || []).map((d) =>
          el("div", {}, el("span", { class: "diff" }, d.field), `: buyer ${d.buyerValue ?? "(none)"} / seller ${d.sellerValue ?? "(none)"}`))),
      ])));
    }
    return parts;
  },

  async bills() {
    const b = state.bilateral;
    const listed = await get(`${API.billing}/customerBill`, { limit: 100 });
    // MEF's bill list has no buyerId / sellerId parameters: keep the bills of the chosen bilateral.
    const bills = [];
    for (const summary of listed) {
      const bill = await get(`${API.billing}/customerBill/${summary.id}`);
      if ((bill.buyerId ?? b.buyerId) === b.buyerId && (bill.sellerId ?? b.sellerId) === b.sellerId) bills.push(bill);
    }
    const parts = [el("h2", {}, `Bills (${bills.length}) of ${b.sellerId} to ${b.buyerId}`)];
    if (!bills.length) parts.push(el("p", { class: "muted" }, "No bill in this bilateral yet."));
    parts.push(table(["bill", "number", "state", "period", "due", "tax excluded", "tax", "amount due", "remaining"],
      bills.map((bill) => [el("td", {}, el("code", {}, bill.id)), bill.billNo ?? "", stateCell(bill.state),
        period(bill.billingPeriod), (bill.paymentDueDate ?? "").slice(0, 10), amount(bill.taxExcludedAmount),
        tax(bill), amount(bill.amountDue), amount(bill.remainingAmount)])));
    for (const bill of bills) {
      const items = [];
      for (const ref of bill.customerBillItem || []) {
        try { items.push(await get(`${API.billing}/customerBillItem/${ref.id}`)); } catch (e) { items.push({ id: ref.id, state: String(e.message) }); }
      }
      parts.push(el("h3", {}, `Items of ${bill.billNo ?? bill.id} (${items.length})`));
      parts.push(table(["item", "product", "description", "kind", "quantity", "rate", "tax excluded", "tax", "state"],
        items.map((i) => [el("td", {}, el("code", {}, i.id)), (i.product || {}).id ?? "", i.description ?? "",
          i.chargeKind ?? i.customerBillItemType ?? "", i.unitQuantity !== undefined ? `${i.unitQuantity} ${i.unit ?? ""}` : "",
          amount(i.unitRate), amount(i.taxExcludedAmount),
          (i.appliedTax || []).map((t) => `${t.description ?? t.category} ${amount(t.amount)}`).join(", "), stateCell(i.state)])));
      if ((bill.appliedPayment || []).length) {
        parts.push(table(["payment", "method", "date", "applied"], bill.appliedPayment.map((p) => [
          (p.payment || {}).id ?? "", (p.payment || {}).paymentMethod ?? "", ((p.payment || {}).paymentDate ?? "").slice(0, 10),
          amount(p.appliedAmount)])));
      }
    }
    return parts;
  },

  async disputes() {
    const parts = [el("h2", {}, "Disputes")];
    try {
      const disputes = await get(`${API.bilateral}/dispute`, { limit: 100 });
      if (!disputes.length) parts.push(el("p", { class: "muted" }, "No dispute in this bilateral."));
      parts.push(table(["dispute", "target", "reason", "raised by", "latest proposal", "state", "resolution"],
        disputes.map((d) => {
          const last = (d.proposals || []).at(-1);
          const proposal = last ? `${last.outcome}${last.amountMinor ? ` ${(last.amountMinor / 100).toFixed(2)}` : ""} by ${last.proposedBy}: ${last.description}` : "";
          const resolution = d.resolution ? `${d.resolution.kind} by ${d.resolution.by}${d.adjustment ? `, adjustment ${d.adjustment.id}` : ""}` : "";
          return [el("td", {}, el("code", {}, d.id)), `${d.targetType} ${(d.target || {}).id ?? ""}`, d.reason ?? "",
            d.raisedBy ?? "", proposal, stateCell(d.state), resolution];
        })));
    } catch (error) { parts.push(failure(error)); }
    parts.push(el("h2", {}, "Settlements"));
    try {
      const settlements = await get(`${API.bilateral}/settlement`, { limit: 100 });
      if (!settlements.length) parts.push(el("p", { class: "muted" }, "No settlement yet."));
      for (const s of settlements) {
        parts.push(el("h3", {}, `${s.id}: ${s.partyA} and ${s.partyB}, ${period({ startDateTime: s.periodStart, endDateTime: s.periodEnd })}, ${s.state}`));
        parts.push(table(["currency", `${s.partyA} owes`, `${s.partyB} owes`, "net", "paid"], (s.lines || []).map((l) => [
          l.currency, amount(l.aOwesB), amount(l.bOwesA),
          l.payer ? `${l.payer} pays ${l.payee} ${amount(l.netAmount)}` : "nets to zero", l.paid ? "yes" : "no"])));
        parts.push(el("p", {}, `confirmed by ${(s.confirmedBy || []).join(", ") || "nobody yet"}; bills ${(s.customerBill || []).map((c) => c.id).join(", ")}`));
      }
    } catch (error) { parts.push(failure(error)); }
    return parts;
  },

  async log() {
    const checkpoints = await get(`${API.log}/checkpoint`, { limit: 50 });
    const receipts = await get(`${API.log}/anchorReceipt`, { limit: 50 });
    const endorsed = checkpoints.filter((c) => c.endorsed).length;
    return [
      el("h2", {}, `Checkpoints (${checkpoints.length}, ${endorsed} endorsed by both parties)`),
      table(["size", "root", "created", "signatures", "endorsed", "anchor"], checkpoints.map((c) => [
        String(c.treeSize), el("td", {}, el("code", {}, c.rootHash)), c.createdAt,
        el("td", {}, c.signatures.map((s) => el("div", {}, `${s.kind} ${s.role} ${s.partyId} (${s.keyName}+${s.keyId})`))),
        el("td", { class: c.endorsed ? "ok" : "muted" }, c.endorsed ? "endorsed" : "not yet"),
        c.anchorReceipt ? `${c.anchorReceipt.backend} ${c.anchorReceipt.anchoredAt}` : "queued",
      ])),
      el("h2", {}, `Anchor receipts (${receipts.length})`),
      table(["size", "backend", "anchored", "receipt"], receipts.map((r) => [String(r.treeSize), r.backend, r.anchoredAt,
        el("td", {}, el("code", {}, JSON.stringify(r.receipt)))])),
    ];
  },

  async proof() {
    const form = el("form", { id: "proof-form" },
      el("label", {}, "resource type ", el("input", { id: "proof-type", value: "productOrder" })), " ",
      el("label", {}, "resource id ", el("input", { id: "proof-id", size: 40 })), " ",
      el("button", { type: "submit" }, "verify inclusion"));
    const out = el("div", { id: "proof-result" });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      out.replaceChildren(el("p", { class: "muted" }, "checking..."));
      try { out.replaceChildren(...(await proveResource($("#proof-type").value, $("#proof-id").value.trim()))); }
      catch (error) { out.replaceChildren(failure(error)); }
    });
    return [el("h2", {}, "Proof viewer"),
      el("p", {}, "Fetches the resource's latest leaf and its inclusion proof against the latest checkpoint, then " +
        "recomputes the root here in the browser (WebCrypto SHA-256) and compares it with the signed root."),
      form, out];
  },
};

async function proveResource(resourceType, resourceId) {
  const latest = await get(`${API.log}/checkpoint/latest`);
  const leaves = (await get(`${API.log}/leaf`, { resourceType, resourceId, limit: 1000 }))
    .filter((leaf) => leaf.leafIndex < latest.treeSize);
  if (!leaves.length) return [el("p", { class: "bad" }, `no leaf of ${resourceType} ${resourceId} in the checkpoint of size ${latest.treeSize}`)];
  const leaf = leaves[leaves.length - 1];
  const answer = await get(`${API.log}/inclusionProof`, { leafIndex: leaf.leafIndex, treeSize: latest.treeSize });
  const result = await Merkle.verifyInclusion(answer);
  const noteRoot = latest.note.split("\n")[2];
  const signedRootMatches = noteRoot === answer.rootHash;
  const ok = result.ok && signedRootMatches;
  return [
    el("p", { id: "proof-verdict", class: ok ? "ok" : "bad" }, ok
      ? `verified: leaf ${leaf.leafIndex} is in the tree of size ${answer.treeSize}, whose signed root the browser recomputed`
      : "NOT verified: the recomputed root differs from the signed root"),
    table(["", ""], [
      ["leaf record", el("td", {}, el("code", {}, result.record))],
      ["leaf hash", el("td", {}, el("code", {}, result.leafHash))],
      ["audit path", el("td", {}, el("code", {}, answer.proof.join("\n")))],
      ["computed root", el("td", {}, el("code", {}, result.computedRoot))],
      ["signed root", el("td", {}, el("code", {}, result.signedRoot))],
      ["checkpoint", el("td", {}, el("pre", {}, latest.note))],
      ["endorsed", latest.endorsed ? "by both parties" : "not yet by both parties"],
    ]),
  ];
}

// --- shell -----------------------------------------------------------------------------------------------------

async function render() {
  for (const button of document.querySelectorAll("#tabs button")) button.classList.toggle("active", button.dataset.tab === state.tab);
  show(el("p", { class: "muted" }, "loading..."));
  try { show(...(await views[state.tab]())); } catch (error) { show(failure(error)); }
}

async function open() {
  try {
    state.me = await get("/console/api/whoami");
  } catch (error) {
    sessionStorage.removeItem("sonataToken");
    state.token = null;
    $("#login").hidden = false;
    $("#login-error").textContent = error.status === 401 ? "That token is not valid here." : String(error.message);
    return;
  }
  $("#login").hidden = true;
  $("#tabs").hidden = false;
  $("#logout").hidden = false;
  $("#who").textContent = `${state.me.partyId} as ${state.me.role}`;
  const select = $("#bilateral");
  select.replaceChildren(...state.me.bilaterals.map((b, i) =>
    el("option", { value: String(i) }, `${b.buyerId} buys from ${b.sellerId}`)));
  select.hidden = false;
  state.bilateral = state.me.bilaterals[0] || null;
  await render();
}

$("#login").addEventListener("submit", (event) => {
  event.preventDefault();
  state.token = $("#token").value.trim();
  sessionStorage.setItem("sonataToken", state.token);
  open();
});
$("#logout").addEventListener("click", () => { sessionStorage.removeItem("sonataToken"); location.reload(); });
$("#bilateral").addEventListener("change", (event) => { state.bilateral = state.me.bilaterals[Number(event.target.value)]; render(); });
for (const button of document.querySelectorAll("#tabs button")) {
  button.addEventListener("click", () => { state.tab = button.dataset.tab; render(); });
}
if (state.token) open();
