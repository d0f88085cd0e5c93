/* datareach HTML report: the destinations table and the evidence of each finding.
 * Inlined into the page and allowed by its sha256 in the CSP. Every value comes from the
 * embedded JSON document, which holds attacker-controlled strings: they are only ever set
 * with textContent or as non-URL attributes; nothing builds HTML from strings, no element
 * gets a src, the only href set is the blob: URL of the CSV this script makes (a download),
 * and nothing is fetched. */
(function () {
  "use strict";
  var PAGE = 300, FINDING_PAGE = 100;
  var dataEl = document.getElementById("datareach-data");
  if (!dataEl) { return; }
  var doc;
  try { doc = JSON.parse(dataEl.textContent); } catch (e) { return; }
  document.documentElement.classList.add("js");

  function arr(x) { return Array.isArray(x) ? x : []; }
  function str(x) { return x === null || x === undefined ? "" : String(x); }
  // Control and format characters from the capture (bidi overrides, zero-width, C0, C1, DEL)
  // shown as visible \uXXXX text, as the server-side report and the terminal show them.
  var CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]/g;
  function vis(x) {
    return String(x).replace(CONTROL, function (c) { return "\\u" + ("000" + c.charCodeAt(0).toString(16)).slice(-4); });
  }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = vis(text); }
    return e;
  }
  function add(parent) {
    for (var i = 1; i < arguments.length; i++) {
      var c = arguments[i];
      if (c === null || c === undefined) { continue; }
      parent.appendChild(typeof c === "object" ? c : document.createTextNode(vis(c)));
    }
    return parent;
  }
  function tag(text, cls) { return el("span", "tag" + (cls ? " " + cls : ""), text); }
  // A host name, id or URL that may wrap after its separators (a <wbr>), never mid-word.
  function breakable(text, cls) {
    var s = el("span", cls || null);
    vis(str(text)).split(/(?<=[./:_@=?&,;+-])(?=.)/).forEach(function (p, i) {
      if (i) { s.appendChild(document.createElement("wbr")); }
      s.appendChild(document.createTextNode(p));
    });
    return s;
  }
  // Document times for people: no fractions of a second, a space for the T.
  function when(x) { return str(x).replace(/(\d{2}:\d{2}:\d{2})\.\d+/, "$1").replace(/^(\d{4}-\d{2}-\d{2})T/, "$1 "); }
  // Category ids in plain words, from the page's own list (rendered by the server).
  var catLabels = Object.create(null);
  Array.prototype.forEach.call(document.querySelectorAll("#category-labels dt"), function (dt) {
    var dd = dt.nextElementSibling;
    if (dd) { catLabels[dt.textContent] = dd.textContent; }
  });
  function catTag(c) {
    c = str(c);
    var t = tag(catLabels[c] || c, "cat");
    t.title = c;
    t.setAttribute("data-category", c);
    return t;
  }
  function bytes(n) {
    n = Number(n) || 0;
    var units = ["B", "kB", "MB", "GB", "TB"], i = 0;
    while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
    return (i === 0 ? n.toFixed(0) : n.toFixed(1)) + " " + units[i];
  }
  function uniq(xs) {
    var seen = Object.create(null), out = [];
    xs.forEach(function (x) { var k = str(x); if (!seen[k]) { seen[k] = true; out.push(k); } });
    return out;
  }
  function kv(pairs) {
    var dl = el("dl", "kv");
    pairs.forEach(function (p) {
      if (p[1] === null || p[1] === undefined || p[1] === "") { return; }
      add(dl, el("dt", null, p[0]), add(el("dd", "wrap"), typeof p[1] === "object" ? p[1] : String(p[1])));
    });
    return dl;
  }
  function chain(steps) {
    var s = el("span", "chain wrap");
    arr(steps).forEach(function (x, i) {
      if (i) { add(s, el("span", "sep", " \u203a ")); }
      add(s, el("span", "step", x));
    });
    return s;
  }

  var dests = arr(doc.destinations), findings = arr(doc.findings), exchanges = arr(doc.exchanges);
  var violations = arr(doc.violations);
  /* Records name each other by id (schema 2): id -> position, the first entry with that id. A
     number is a position (schema 1.x). */
  function positions(list) {
    var at = Object.create(null);
    list.forEach(function (x, i) {
      var id = x && x.id;
      if (typeof id === "string" && !(id in at)) { at[id] = i; }
    });
    return function (ref) {
      if (typeof ref === "string") { return ref in at ? at[ref] : -1; }
      return typeof ref === "number" && ref >= 0 && ref < list.length && Math.floor(ref) === ref ? ref : -1;
    };
  }
  var destAt = positions(dests), exchangeAt = positions(exchanges);
  var byDest = dests.map(function () { return { deny: 0, warn: 0, allowed: 0, list: [] }; });
  violations.forEach(function (v) {
    var i = destAt(v && v.destination);
    if (i < 0 || !byDest[i]) { return; }
    var b = byDest[i];
    b.list.push(v);
    if (v.allowed) { b.allowed++; } else if (v.action === "deny") { b.deny++; } else { b.warn++; }
  });
  var findingsByHost = Object.create(null);
  findings.forEach(function (f, i) {
    var k = str(f && f.host) + "\u0000" + str(f && f.app);
    (findingsByHost[k] = findingsByHost[k] || []).push(i);
  });

  // as report/wording.py hosted_by: who hosts a destination, one item each
  var HOSTING_NOTES = { "platform": "shared platform", "as": "network", "cname": "CNAME" };
  function hostedBy(d) {
    var out = [];
    arr(d.hosting).forEach(function (h) {
      if (!h || typeof h !== "object") { return; }
      var name = str(h.name || h.platform || "?"), basis = str(h.basis);
      var note = HOSTING_NOTES[basis] || basis;
      if (basis === "platform" && h.platform && str(h.platform) !== name) { note = "shared platform " + str(h.platform); }
      var item = name + " (" + (h.hq_country ? str(h.hq_country) + "; " : "") + note + ")";
      if (out.indexOf(item) < 0) { out.push(item); }
    });
    return out;
  }
  function ownerText(d) {
    var o = d.owner;
    if (!o || typeof o !== "object") {
      var hosts = hostedBy(d);
      return hosts.length ? "owner unknown, hosted by " + hosts.join(", ") : "";
    }
    var up = o.ultimate_parent || {};
    return up.entity && up.entity !== o.entity ? str(o.name) + " \u2192 " + str(up.name) : str(o.name);
  }
  // as anycast_label in wording.py
  function anycastLabel(a) {
    if (!a || typeof a !== "object") { return null; }
    return (a.kind === "anycast" ? "anycast: " : "CDN edge: ") + str(a.name || a.operator || "?");
  }
  // as service_line in service_wording.py: "AppsFlyer SDK \u2014 attribution (vendor: ...)"
  function serviceText(d) {
    var s = d.service;
    if (!s || typeof s !== "object" || !s.name) { return ""; }
    var ps = arr(s.purposes).map(function (p) { return str(p).replace(/-/g, " "); }).slice(0, 2);
    if (!ps.length && s.purpose) { ps = [str(s.purpose).replace(/-/g, " ")]; }
    var text = str(s.name) + " \u2014 " + (ps.join(" / ") || "purpose unknown");
    if (s.vendor_is_owner !== true && (s.vendor_name || s.vendor)) {
      text += " (vendor: " + str(s.vendor_name || s.vendor) + (s.vendor_hq ? ", " + str(s.vendor_hq) : "") + ")";
    }
    return text;
  }
  // as LOCAL_SCOPES in html.py
  var LOCAL = { "private": true, "loopback": true, "link-local": true, "multicast": true, "unspecified": true };
  var rows = [];
  dests.forEach(function (d, i) {
    d = d && typeof d === "object" ? d : {};
    // local and private addresses are listed apart (server-rendered), not as destinations
    if (typeof d.ip_scope === "string" && LOCAL[d.ip_scope] === true) { return; }
    var juris = uniq(arr(d.reach).map(function (r) { return r && r.jurisdiction; }).filter(Boolean));
    var server = str(d.ip_scope && d.ip_scope !== "public" ? d.ip_scope : arr(d.countries).join(",") || d.country || "?");
    // an anycast / CDN edge server's country is only the geo database's guess (as where() in wording.py)
    var edge = uniq(arr(d.servers).map(function (s) { return s && s.anycast ? anycastLabel(s.anycast) : null; })
      .filter(Boolean));
    if (edge.length && !(d.ip_scope && d.ip_scope !== "public")) {
      var firm = uniq(arr(d.servers).filter(function (s) { return s && s.country && !s.anycast; })
        .map(function (s) { return str(s.country); })).sort();
      server = firm.concat(edge.map(function (x) { return "not determinable (" + x + ")"; })).join(",");
    }
    var row = {
      i: i, d: d, host: str(d.host), app: str(d.app), owner: ownerText(d), service: serviceText(d), server: server,
      juris: juris, pd: arr(d.data_types).map(str), out: Number(d.bytes_out) || 0, inb: Number(d.bytes_in) || 0,
      conns: Number(d.connections) || 0, v: byDest[i]
    };
    row.policy = row.v.deny * 1000000 + row.v.warn * 1000 + row.v.allowed;
    row.search = [row.host, row.app, row.owner, row.service, server, str(d.as_org), juris.join(" "), row.pd.join(" "),
      arr(d.ips).join(" "), str(d.registrable_domain)].join("\u0000").toLowerCase();
    rows.push(row);
  });

  /* ---------------------------------------------------------------- destinations table */
  var COLS = [
    { key: "host", label: "Host", get: function (r) { return r.host; } },
    { key: "app", label: "App", get: function (r) { return r.app; } },
    { key: "owner", label: "Operator \u2192 ultimate parent", get: function (r) { return r.owner; } },
    { key: "service", label: "Service \u2014 purpose", get: function (r) { return r.service; } },
    { key: "server", label: "Server", get: function (r) { return r.server; } },
    { key: "juris", label: "Jurisdictions", get: function (r) { return r.juris.join(","); } },
    { key: "pd", label: "Personal data", get: function (r) { return r.pd.length; }, num: true },
    { key: "out", label: "Sent", get: function (r) { return r.out; }, num: true },
    { key: "inb", label: "Received", get: function (r) { return r.inb; }, num: true },
    { key: "conns", label: "Conns", get: function (r) { return r.conns; }, num: true },
    { key: "policy", label: "Policy", get: function (r) { return r.policy; }, num: true }
  ];
  var state = { key: null, dir: 1, limit: PAGE, open: Object.create(null) };
  var table = document.getElementById("destinations-table");
  var controls = document.getElementById("destination-controls");
  var countEl = document.getElementById("destinations-count");
  var moreBtn = document.getElementById("destinations-more");
  var textIn = document.getElementById("filter-text");
  var jurSel = document.getElementById("filter-jurisdiction");
  var pdBox = document.getElementById("filter-personal");
  var violBox = document.getElementById("filter-violations");
  if (!table || !controls) { return; }
  controls.hidden = false;
  if (!violations.length && violBox && violBox.parentNode) { violBox.disabled = true; violBox.parentNode.classList.add("muted"); }

  var jurNames = Object.create(null);
  dests.forEach(function (d) {
    arr(d && d.reach).forEach(function (r) { if (r && r.jurisdiction) { jurNames[str(r.jurisdiction)] = str(r.name); } });
  });
  Object.keys(jurNames).sort().forEach(function (j) {
    var o = el("option", null, j + (jurNames[j] ? " \u2013 " + jurNames[j] : ""));
    o.value = j;
    jurSel.appendChild(o);
  });

  var thead = el("thead"), htr = el("tr"), tbody = el("tbody");
  COLS.forEach(function (c) {
    var th = el("th", c.num ? "num" : null);
    th.setAttribute("aria-sort", "none");
    th.setAttribute("data-key", c.key);
    var b = el("button", "sort", c.label);
    b.type = "button";
    b.setAttribute("data-testid", "sort-" + c.key);
    b.addEventListener("click", function () {
      if (state.key === c.key) { state.dir = -state.dir; } else { state.key = c.key; state.dir = c.num ? -1 : 1; }
      render();
    });
    th.appendChild(b);
    htr.appendChild(th);
  });
  thead.appendChild(htr);
  table.replaceChildren(thead, tbody);

  function filtered() {
    var q = textIn.value.trim().toLowerCase(), j = jurSel.value, pd = pdBox.checked, vo = violBox.checked;
    var out = rows.filter(function (r) {
      if (q && r.search.indexOf(q) < 0) { return false; }
      if (j && r.juris.indexOf(j) < 0) { return false; }
      if (pd && !r.pd.length) { return false; }
      if (vo && !(r.v.deny || r.v.warn)) { return false; }
      return true;
    });
    if (state.key) {
      var col = COLS.filter(function (c) { return c.key === state.key; })[0];
      out.sort(function (a, b) {
        var x = col.get(a), y = col.get(b), c;
        if (col.num) { c = x - y; } else { x = str(x).toLowerCase(); y = str(y).toLowerCase(); c = x < y ? -1 : x > y ? 1 : 0; }
        return c * state.dir || a.i - b.i;
      });
    }
    return out;
  }

  function policyCell(r) {
    var td = el("td", "num");
    if (r.v.deny) { add(td, tag(r.v.deny + " deny", "deny")); }
    if (r.v.warn) { add(td, tag(r.v.warn + " warn", "warn")); }
    if (r.v.allowed) { add(td, tag(r.v.allowed + " allowed", "allowed")); }
    return td;
  }

  function rowEl(r) {
    var tr = el("tr", "dest");
    tr.setAttribute("data-testid", "destination-row");
    tr.setAttribute("data-index", String(r.i));
    var hostTd = el("td", "host");
    var t = el("button", "toggle", state.open[r.i] ? "\u2212" : "+");
    t.type = "button";
    t.setAttribute("aria-label", "details");
    t.setAttribute("aria-expanded", state.open[r.i] ? "true" : "false");
    add(hostTd, t, breakable(r.host, "host-name"));
    if (r.d.ech) { add(hostTd, " ", tag("ECH")); }
    var jt = el("td");
    r.juris.forEach(function (j) { add(jt, tag(j)); });
    var pt = el("td");
    r.pd.forEach(function (p) { add(pt, tag(p, "pd")); });
    add(tr, hostTd, el("td", "app", r.app), el("td", "owner", r.owner || "not in the knowledge base"),
      el("td", "service", r.service), el("td", "server", r.server), jt, pt, el("td", "num", bytes(r.out)), el("td", "num", bytes(r.inb)),
      el("td", "num", r.conns), policyCell(r));
    Array.prototype.forEach.call(tr.children, function (td, k) { td.setAttribute("data-label", COLS[k].label); });
    return tr;
  }

  function detailsEl(r) {
    var d = r.d, tr = el("tr", "details"), td = el("td");
    td.colSpan = COLS.length;
    tr.setAttribute("data-testid", "destination-details");
    var o = d.owner;
    add(td, kv([
      ["Registrable domain", str(d.registrable_domain)],
      ["Name from", str(d.name_source) + (arr(d.names).length ? " (DNS names: " + arr(d.names).join(", ") + ")" : "")],
      ["CNAME chain", arr(d.cname_chain).join(" \u2192 ")],
      ["Servers", arr(d.servers).map(function (s) {
        return str(s.ip) + " " + str(s.country || s.ip_scope) + (s.as_org ? " (" + str(s.as_org) + ")" : "");
      }).join("; ")],
      ["Ports", arr(d.ports).join(", ") + " " + arr(d.protocols).join("/")],
      ["Seen", when(d.first_seen) + " \u2013 " + when(d.last_seen)]
    ]));
    if (o && typeof o === "object") {
      add(td, el("h3", null, "Owner"));
      add(td, kv([
        ["Operator", str(o.name) + (o.hq_country ? " (" + str(o.hq_country) + ")" : "")],
        ["Found by", str(o.basis) + ": " + str(o.matched)],
        ["Control chain", chain(arr(o.chain).map(function (c) {
          return str(c.name) + " (" + str(c.hq_country || "?") + ")" + (c.control ? " [" + str(c.control) +
            (typeof c.share === "number" ? " " + Math.round(c.share * 1000) / 10 + "%" : "") + "]" : "");
        }))],
        ["State owner", o.state_owner ? str(o.state_owner.name) : ""],
        ["Minority stakes", arr(o.minority_stakes).map(function (m) {
          return str(m.name) + (typeof m.share === "number" ? " " + Math.round(m.share * 1000) / 10 + "%" : "") + " of " + str(m.of);
        }).join("; ")],
        ["Listed on", arr(o.listings).map(function (l) { return str(l.list_name || l.list) + ": " + str(l.name); }).join("; ")],
        ["As of", str(o.as_of)]
      ]));
    }
    if (hostedBy(d).length) {
      add(td, el("h3", null, "Hosted by (not the owner)"));
      add(td, kv(arr(d.hosting).filter(function (h) { return h && typeof h === "object"; }).map(function (h) {
        return [str(h.name || h.platform), str(h.basis) + ": " + arr(h.evidence).join(" \u2192 ")];
      })));
    }
    var sv = d.service;
    if (sv && typeof sv === "object" && sv.name) {
      add(td, el("h3", null, "Service"));
      add(td, kv([
        ["Product", str(sv.name)],
        ["Purpose", arr(sv.purposes).map(str).join(", ") || str(sv.purpose)],
        ["Vendor", str(sv.vendor_name || sv.vendor) + (sv.vendor_hq ? " (" + str(sv.vendor_hq) + ")" : "") +
          (sv.vendor_is_owner === false ? " \u2014 not the host's owner" : "")],
        ["Found by", str(sv.basis) + ": " + str(sv.matched)]
      ]));
    }
    if (arr(d.reach).length) {
      add(td, el("h3", null, "Who can reach it"));
      var ul = el("ul", "plain");
      arr(d.reach).forEach(function (rc) {
        var li = el("li");
        var undet = rc.determinable === false || rc.jurisdiction === null || rc.jurisdiction === undefined;
        add(li, tag((undet ? "not determinable" : str(rc.jurisdiction)) + " \u00b7 " + str(rc.basis)), " ", chain(rc.path));
        if (undet && rc.note) { add(li, el("div", "small muted wrap", str(rc.note))); }
        var laws = arr(rc.laws).map(function (l) { return str(l.title); });
        if (laws.length) { add(li, el("div", "small muted wrap", laws.join("; "))); }
        ul.appendChild(li);
      });
      td.appendChild(ul);
    }
    if (r.v.list.length) {
      add(td, el("h3", null, "Policy"));
      var vl = el("ul", "plain");
      r.v.list.forEach(function (v) {
        add(vl, add(el("li"), tag(v.allowed ? "allowed" : str(v.action), v.allowed ? "allowed" : str(v.action) === "deny" ? "deny" : "warn"),
          " ", str(v.title), " ", el("span", "muted", "(" + str(v.policy) + " / " + str(v.rule) + ")")));
      });
      td.appendChild(vl);
    }
    var fs = findingsByHost[r.host + "\u0000" + r.app] || [];
    if (fs.length) {
      add(td, el("h3", null, "Personal data sent to it"));
      td.appendChild(findingsTable(fs));
    }
    tr.appendChild(td);
    return tr;
  }

  function render(keepLimit) {
    if (!keepLimit) { state.limit = PAGE; }
    var list = filtered();
    var frag = document.createDocumentFragment();
    list.slice(0, state.limit).forEach(function (r) {
      frag.appendChild(rowEl(r));
      if (state.open[r.i]) { frag.appendChild(detailsEl(r)); }
    });
    tbody.replaceChildren(frag);
    Array.prototype.forEach.call(htr.children, function (th) {
      var k = th.getAttribute("data-key");
      th.setAttribute("aria-sort", k === state.key ? (state.dir > 0 ? "ascending" : "descending") : "none");
    });
    var shown = Math.min(list.length, state.limit);
    countEl.textContent = "Showing " + shown + " of " + list.length + " matching (" + rows.length + " destinations)";
    countEl.setAttribute("data-shown", String(shown));
    countEl.setAttribute("data-matching", String(list.length));
    moreBtn.hidden = list.length <= state.limit;
    moreBtn.textContent = "Show all " + list.length;
  }
  tbody.addEventListener("click", function (ev) {
    var tr = ev.target && ev.target.closest ? ev.target.closest("tr.dest") : null;
    if (!tr) { return; }
    var i = Number(tr.getAttribute("data-index"));
    if (state.open[i]) { delete state.open[i]; } else { state.open[i] = true; }
    render(true);
  });
  moreBtn.addEventListener("click", function () { state.limit = Infinity; render(true); });

  /* CSV of the rows that match the filters (all of them, not only those drawn), made here and
     handed to the browser as a download of a blob: URL: nothing is fetched or navigated to. */
  function csvCell(x) {
    var s = str(x);
    if (/^[=+\-@\t\r]/.test(s)) { s = "'" + s; }  // not a formula in a spreadsheet
    return /[",\r\n']/.test(s) ? "\"" + s.replace(/"/g, "\"\"") + "\"" : s;
  }
  function csv() {
    var head = ["host", "app", "operator", "ultimate_parent", "service", "service_purpose", "server", "jurisdictions", "personal_data", "bytes_out",
      "bytes_in", "connections", "deny", "warn", "allowed", "first_seen", "last_seen"];
    var lines = [head.join(",")];
    filtered().forEach(function (r) {
      var o = r.d.owner && typeof r.d.owner === "object" ? r.d.owner : {};
      var up = o.ultimate_parent && typeof o.ultimate_parent === "object" ? o.ultimate_parent : {};
      var sv = r.d.service && typeof r.d.service === "object" ? r.d.service : {};
      lines.push([r.host, r.app, str(o.name), str(up.name || o.name), str(sv.name), str(sv.purpose), r.server, r.juris.join(" "), r.pd.join(" "),
        r.out, r.inb, r.conns, r.v.deny, r.v.warn, r.v.allowed, str(r.d.first_seen), str(r.d.last_seen)].map(csvCell).join(","));
    });
    return lines.join("\r\n") + "\r\n";
  }
  var csvBtn = document.getElementById("destinations-csv");
  if (csvBtn) {
    csvBtn.hidden = false;
    csvBtn.addEventListener("click", function () {
      var url = URL.createObjectURL(new Blob(["\ufeff" + csv()], { type: "text/csv;charset=utf-8" }));
      var a = document.createElement("a");
      a.download = "destinations.csv";
      a.setAttribute("href", url);  // the only URL the script sets: its own blob
      a.click();
      setTimeout(function () { URL.revokeObjectURL(url); }, 60000);
    });
  }
  textIn.addEventListener("input", function () { render(); });
  [jurSel, pdBox, violBox].forEach(function (x) { x.addEventListener("change", function () { render(); }); });
  render();

  /* ---------------------------------------------------------------- findings evidence */
  function findingsTable(indexes) {
    var t = el("table", "findings");
    var head = add(el("tr"), el("th", null, "Data"), el("th", null, "Where in the request"), el("th", null, "Encoding chain"),
      el("th", null, "Value"), el("th", "num", "Confidence"), el("th", null, "Source"));
    add(t, add(el("thead"), head));
    var body = el("tbody");
    indexes.forEach(function (i) {
      var f = findings[i] || {};
      var val = el("td", "mono wrap");
      add(val, el("span", "redacted", str(f.value_redacted)));
      if (typeof f.value === "string") { add(val, el("div", "revealed", f.value), tag("revealed", "warn")); }
      var cats = el("div", "small");
      arr(f.categories).forEach(function (c) { add(cats, catTag(c)); });
      var tr = add(el("tr"), add(el("td"), tag(str(f.data_type), "pd"), cats), el("td", "mono wrap", str(f.location)),
        add(el("td"), chain(f.encoding)), val,
        el("td", "num", typeof f.confidence === "number" ? f.confidence.toFixed(2) : str(f.confidence)),
        el("td", null, str(f.source)));
      tr.setAttribute("data-testid", "finding");
      body.appendChild(tr);
    });
    t.appendChild(body);
    return t;
  }

  var fWrap = document.getElementById("findings-list");
  var fMore = document.getElementById("findings-more");
  if (fWrap) {
    var groups = [], byEx = Object.create(null);
    findings.forEach(function (f, i) {
      var at = exchangeAt(f && f.exchange);
      var k = at >= 0 ? "exchange:" + at : "none:" + str(f && f.host);
      if (!byEx[k]) { byEx[k] = { ex: at >= 0 ? exchanges[at] : null, host: str(f && f.host), app: str(f && f.app), idx: [] }; groups.push(byEx[k]); }
      byEx[k].idx.push(i);
    });
    var fLimit = FINDING_PAGE;
    var renderFindings = function () {
      var frag = document.createDocumentFragment();
      groups.slice(0, fLimit).forEach(function (g) {
        var box = el("div", "finding-group");
        box.setAttribute("data-testid", "finding-group");
        var ex = g.ex && typeof g.ex === "object" ? g.ex : {};
        add(box, add(el("div", "req"), el("strong", null, str(ex.method || "?")), " ", el("span", "url", str(ex.url || g.host))));
        add(box, kv([
          ["Host", g.host], ["App", g.app], ["Sent", when(ex.ts)],
          ["Server", ex.server_ip ? str(ex.server_ip) + (ex.server_port ? " port " + str(ex.server_port) : "") : ""],
          ["Protocol", str(ex.scheme) + (ex.http_version ? " " + str(ex.http_version) : "") + (ex.scheme === "http" ? " (clear text)" : "")],
          ["Status", ex.status === null || ex.status === undefined ? "no response seen" : str(ex.status)],
          ["Decoding cut", arr(ex.decode_cuts).join("; ")]
        ]));
        box.appendChild(findingsTable(g.idx));
        frag.appendChild(box);
      });
      fWrap.replaceChildren(frag);
      if (fMore) {
        fMore.hidden = groups.length <= fLimit;
        fMore.textContent = "Show all " + groups.length + " requests";
      }
    };
    if (fMore) { fMore.addEventListener("click", function () { fLimit = Infinity; renderFindings(); }); }
    renderFindings();
  }
  document.documentElement.setAttribute("data-ready", "1");
})();
