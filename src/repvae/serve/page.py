"""The service's page at ``/``: one self-contained HTML file (no external scripts or styles).

Pick a stored image (by id, or at random) or upload one, choose the prefix size m (and whether
to use the funnel), and the neighbours appear as thumbnails with their labels, scores and the
query time. ``?id=ID&dim=M`` in the address runs that query on load. After each query the page
writes what it shows into ``body[data-result]`` (read by the browser test).
"""

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>repvae: nearest neighbours</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 980px; padding: 0 1em;
       color: #222; }
h1 { font-size: 1.3em; margin-bottom: .2em; }
#about { color: #555; font-size: .9em; margin-bottom: 1em; }
fieldset { border: 1px solid #ccc; border-radius: 6px; margin: .5em 0; padding: .6em .8em; }
label { margin-right: 1em; }
button { padding: .3em .9em; }
#query img, .hit img { width: 84px; height: 84px; image-rendering: pixelated;
                       border: 1px solid #bbb; background: #000; }
#hits { display: flex; flex-wrap: wrap; gap: .8em; margin-top: .8em; }
.hit { text-align: center; font-size: .85em; width: 96px; }
.hit.same { outline: 2px solid #2a7; }
#status { margin-top: .6em; color: #333; }
#error { color: #b00; margin-top: .6em; }
</style></head>
<body>
<h1>Nearest neighbours at the size you afford</h1>
<div id="about">loading…</div>
<fieldset><legend>Query</legend>
  <label>stored id <input id="item" type="number" min="0" value="0" style="width:7em"></label>
  <button id="random" type="button">random stored image</button>
  <label>or upload <input id="upload" type="file" accept="image/*"></label>
</fieldset>
<fieldset><legend>Search</legend>
  <label>m <select id="dim"></select></label>
  <label>k <input id="k" type="number" min="1" max="100" value="10" style="width:4em"></label>
  <label><input id="funnel" type="checkbox"> funnel</label>
  <button id="go" type="button">search</button>
</fieldset>
<div id="query"></div>
<div id="status"></div>
<div id="error"></div>
<div id="hits"></div>
<script>
const $ = (id) => document.getElementById(id);
let about = null;

function className(label) {
  const names = (about && about.class_names) || [];
  return label >= 0 && label < names.length ? names[label] : String(label);
}

function funnelParams(dim) {
  if (!$("funnel").checked) return "";
  let ladder = (about.funnel && about.funnel.length) ? about.funnel.slice()
             : about.dims.filter((m) => m <= dim);
  if (ladder.length < 2) ladder = [about.dims[0], dim];
  const k = Number($("k").value);
  const shortlist = (about.shortlist && about.shortlist.length === ladder.length - 1)
      ? about.shortlist
      : ladder.slice(1).map((_, i) => Math.max(k, 200 >> i));
  return "&funnel=" + ladder.join(",") + "&shortlist=" + shortlist.join(",");
}

function show(result, query) {
  $("error").textContent = "";
  const ms = (1000 * result.seconds).toFixed(2);
  const how = result.funnel ? "funnel " + result.funnel.join("→") : "flat at m=" + result.dim;
  $("status").textContent = `${result.neighbours.length} neighbours in ${ms} ms (${how}, ` +
      `${about.items} stored items, ${result.multiply_adds.toLocaleString()} multiply-adds)`;
  $("query").innerHTML = "";
  if (query.src) {
    const img = document.createElement("img");
    img.src = query.src; img.alt = "query";
    $("query").append("query: ", img, query.label !== undefined ?
        " label " + className(query.label) : "");
  }
  $("hits").innerHTML = "";
  for (const n of result.neighbours) {
    const div = document.createElement("div");
    div.className = "hit" + (query.label !== undefined && n.label === query.label ? " same" : "");
    const img = document.createElement("img");
    img.src = "/items/" + n.id + "/image"; img.alt = "item " + n.id;
    div.append(img, document.createElement("br"),
               `${className(n.label)} · #${n.id}`, document.createElement("br"),
               n.score.toFixed(3));
    $("hits").append(div);
  }
  document.body.dataset.result = JSON.stringify({
    query: query.id !== undefined ? {id: query.id} : {upload: true},
    dim: result.dim, funnel: result.funnel, seconds: result.seconds,
    labels: result.neighbours.map((n) => n.label), query_label: query.label,
    thumbnails: result.neighbours.length});
}

function fail(detail) {
  $("error").textContent = detail.field ? `${detail.field}: ${detail.detail}` : String(detail);
  document.body.dataset.error = $("error").textContent;
}

async function searchStored() {
  const id = Number($("item").value), dim = Number($("dim").value);
  const url = `/search?id=${id}&dim=${dim}&k=${$("k").value}` + funnelParams(dim);
  const [response, item] = await Promise.all([fetch(url), fetch(`/items/${id}?dim=${dim}`)]);
  const body = await response.json();
  if (!response.ok) return fail(body);
  const stored = await item.json();
  show(body, {id: id, label: stored.label, src: about.images ? `/items/${id}/image` : null});
}

async function searchUpload(file) {
  const dim = Number($("dim").value);
  const form = new FormData(); form.append("image", file);
  const url = `/search?dim=${dim}&k=${$("k").value}` + funnelParams(dim);
  const response = await fetch(url, {method: "POST", body: form});
  const body = await response.json();
  if (!response.ok) return fail(body);
  show(body, {src: URL.createObjectURL(file)});
}

async function start() {
  about = await (await fetch("/version")).json();
  $("about").textContent = `${about.items.toLocaleString()} items · embeddings of ` +
      `${about.dim} numbers, indexed at m = ${about.dims.join(", ")} · ${about.metric} · ` +
      `encoder ${about.encoder} · repvae ${about.repvae}`;
  for (const m of about.dims) {
    const option = document.createElement("option"); option.value = m; option.textContent = m;
    $("dim").append(option);
  }
  const params = new URLSearchParams(location.search);
  $("dim").value = params.get("dim") || about.dims[0];
  if (params.has("k")) $("k").value = params.get("k");
  if (params.get("funnel") === "1") $("funnel").checked = true;
  $("item").max = about.items - 1;
  $("go").onclick = () => $("upload").files.length ? searchUpload($("upload").files[0])
                                                   : searchStored();
  $("random").onclick = () => {
    $("upload").value = "";
    $("item").value = Math.floor(Math.random() * about.items);
    searchStored();
  };
  $("upload").onchange = () => $("upload").files.length && searchUpload($("upload").files[0]);
  $("item").onchange = () => { $("upload").value = ""; searchStored(); };
  $("dim").onchange = () => $("go").onclick();
  if (params.has("id")) { $("item").value = params.get("id"); await searchStored(); }
}
start().catch((err) => fail(String(err)));
</script>
</body></html>
"""
