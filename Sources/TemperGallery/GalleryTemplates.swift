/// The web UI's Mustache templates: one layout (`page`) that every page fills in (`{{$body}}`), and a
/// page each. Everything is served by the gallery itself: no external stylesheet, font or script.
enum GalleryTemplates {
    static let all: [String: String] = [
        "page": page, "catalogue": catalogue, "train": train, "jobs": jobs, "job": job, "output": output,
        "playground": playground,
    ]

    static let page = #"""
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>{{title}} · Temper gallery</title>
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <style>
        body { font: 15px/1.45 system-ui, sans-serif; margin: 0; color: #1d2330; background: #f6f7f9; }
        header { background: #1d2330; color: #fff; padding: 10px 24px; display: flex; gap: 20px; align-items: baseline; }
        header a { color: #cfd6e4; text-decoration: none; } header a.here { color: #fff; font-weight: 600; }
        header strong { font-size: 17px; margin-right: 12px; }
        main { padding: 16px 24px; max-width: 1200px; }
        .cards { display: flex; flex-wrap: wrap; gap: 12px; }
        .card { background: #fff; border: 1px solid #dde1e8; border-radius: 8px; padding: 12px 16px; min-width: 240px; }
        table { border-collapse: collapse; background: #fff; width: 100%; margin: 6px 0 18px; }
        th, td { border-bottom: 1px solid #e4e7ec; padding: 6px 10px; text-align: left; vertical-align: top; }
        th { background: #eef0f4; font-weight: 600; }
        .state-succeeded, .state-running { color: #17803d; } .state-failed { color: #b42318; } .state-cancelled { color: #8a6d00; }
        .error { color: #b42318; white-space: pre-wrap; } .muted { color: #667085; }
        pre.log { background: #111827; color: #e5e7eb; padding: 10px; max-height: 320px; overflow: auto; font-size: 12px; }
        form label { display: block; margin: 8px 0 2px; font-weight: 600; }
        input, select, textarea, button { font: inherit; padding: 4px 8px; }
        .invalid { outline: 2px solid #b42318; }
        .guide { background: #fff; border-left: 4px solid #3b5bdb; padding: 8px 14px; margin: 8px 0; }
        .row { display: flex; gap: 24px; flex-wrap: wrap; } .row > div { flex: 1; min-width: 320px; }
        svg text { font: 11px system-ui, sans-serif; }
        </style></head>
        <body><header><strong>Temper gallery</strong>
        <a href="/" class="{{#here_catalogue}}here{{/here_catalogue}}">Catalogue</a>
        <a href="/train" class="{{#here_train}}here{{/here_train}}">Train</a>
        <a href="/jobs" class="{{#here_jobs}}here{{/here_jobs}}">Jobs</a>
        <a href="/playground" class="{{#here_playground}}here{{/here_playground}}">Playground</a></header>
        <main>{{$body}}{{/body}}</main>
        <script>
        async function api(method, path, body, raw) {
          const options = { method, headers: {} };
          if (body !== undefined) { options.body = raw ? body : JSON.stringify(body); }
          const response = await fetch(path, options);
          const text = await response.text();
          let json = null; try { json = JSON.parse(text); } catch (e) {}
          if (!response.ok) { const error = new Error(json && json.error ? json.error.message : text); error.field = json && json.error ? json.error.field : null; throw error; }
          return json;
        }
        function show(id, text) { const el = document.getElementById(id); el.textContent = text; }
        </script>
        {{$scripts}}{{/scripts}}
        </body></html>
        """#

    static let catalogue = #"""
        {{<page}}{{$body}}
        <h2>Base models</h2>
        <div class="cards">
        {{#models}}<div class="card model-card"><strong>{{name}}</strong> <span class="muted">{{id}}</span><br>
        {{architecture}} · {{parametersText}} parameters · context {{contextLength}}<br>
        license: {{#license}}{{.}}{{/license}}{{^license}}<span class="muted">not stated</span>{{/license}}<br>
        <span class="muted">{{fileCount}} files, {{sizeText}}</span><br>
        <a href="/train?model={{id}}">Train from it</a></div>{{/models}}
        {{^models}}<p class="muted">No models yet: import a Hugging Face folder from this machine.</p>{{/models}}
        </div>
        <form id="import-form"><label for="import-path">Import a model folder (a path on the server)</label>
        <input id="import-path" size="60" placeholder="/models/SmolLM2-135M-Instruct"> <button>Import</button>
        <div id="import-error" class="error"></div></form>

        <h2>Datasets</h2>
        <table><tr><th>id</th><th>name</th><th>format</th><th>rows</th><th>size</th><th>sha256</th></tr>
        {{#datasets}}<tr><td>{{id}}</td><td>{{name}}</td><td>{{format}}</td><td>{{rows}}</td><td>{{bytes}} B</td><td class="muted">{{shortHash}}</td></tr>{{/datasets}}
        </table>
        <form id="upload-form"><label for="upload-file">Upload a JSON or JSONL dataset</label>
        <input type="file" id="upload-file" accept=".json,.jsonl"> <button>Upload</button>
        <div id="upload-error" class="error"></div></form>

        <h2>Outputs</h2>
        <table><tr><th>id</th><th>kind</th><th>job</th><th>size</th><th></th></tr>
        {{#outputs}}<tr><td><a href="/outputs/{{id}}">{{id}}</a></td><td>{{kind}}</td><td><a href="/jobs/{{jobID}}">{{jobID}}</a></td><td>{{bytes}} B</td>
        <td><button onclick="deploy('{{id}}')">Deploy</button> <a href="/train?output={{id}}">Train further</a></td></tr>{{/outputs}}
        </table>
        <h2>Deployments</h2>
        <table><tr><th>id</th><th>serves</th><th>state</th><th>OpenAI base URL</th></tr>
        {{#deployments}}<tr><td>{{id}}</td><td>{{modelID}} {{#outputIDs}}+ {{.}} {{/outputIDs}}</td><td class="state-{{state}}">{{state}}</td><td>{{url}}</td></tr>{{/deployments}}
        </table><div id="deploy-error" class="error"></div>
        {{/body}}{{$scripts}}<script>
        document.getElementById('import-form').onsubmit = async (event) => {
          event.preventDefault();
          try { await api('POST', '/api/models', { path: document.getElementById('import-path').value }); location.reload(); }
          catch (error) { show('import-error', error.message); }
        };
        document.getElementById('upload-form').onsubmit = async (event) => {
          event.preventDefault();
          const file = document.getElementById('upload-file').files[0];
          if (!file) { show('upload-error', 'choose a file first'); return; }
          try { await api('POST', '/api/datasets?name=' + encodeURIComponent(file.name), await file.arrayBuffer(), true); location.reload(); }
          catch (error) { show('upload-error', error.message); }
        };
        async function deploy(output) {
          show('deploy-error', 'starting…');
          try { await api('POST', '/api/deployments', { output }); location.reload(); }
          catch (error) { show('deploy-error', error.message); }
        }
        </script>{{/scripts}}{{/page}}
        """#

    static let train = #"""
        {{<page}}{{$body}}
        <h2>Train</h2>
        <div class="row"><div>
        <form id="train-form">
        <label for="method">Method</label>
        <select id="method" name="method"><option value="sft">SFT</option><option value="dpo">DPO</option><option value="grpo">GRPO</option></select>
        <label for="model">Base model</label>
        <select id="model" name="model">{{#models}}<option value="{{id}}" {{#selected}}selected{{/selected}}>{{name}} ({{id}})</option>{{/models}}</select>
        <label for="output">…or continue from an output (SFT → DPO → GRPO)</label>
        <select id="output" name="output"><option value="">none: start from the base</option>
        {{#outputs}}<option value="{{id}}" {{#selected}}selected{{/selected}}>{{id}} ({{kind}} of {{jobID}})</option>{{/outputs}}</select>
        <label for="dataset">Dataset</label>
        <select id="dataset" name="dataset">{{#datasets}}<option value="{{id}}">{{name}} · {{format}} · {{rows}} rows</option>{{/datasets}}</select>
        <label for="recipe-method">Fine-tuning</label>
        <select id="recipe-method" name="recipe.method"><option value="lora">LoRA</option><option value="qlora">QLoRA (4-bit base)</option><option value="full">full</option></select>
        <label for="learning_rate">Learning rate</label><input id="learning_rate" name="recipe.learning_rate" value="0.0002">
        <label for="max_steps">Steps (empty: one epoch)</label><input id="max_steps" name="recipe.max_steps" value="">
        <label for="batch_size">Batch size</label><input id="batch_size" name="recipe.batch_size" value="4">
        <label for="lora_rank">LoRA rank</label><input id="lora_rank" name="recipe.lora.rank" value="16">
        <label for="ranks">Processes (data-parallel ranks; each takes the batch size)</label><input id="ranks" name="ranks" value="1">
        {{#launchHosts}}<label for="hosts">Hosts, one per process, comma-separated (of {{.}}; empty: this machine)</label><input id="hosts" name="hosts" value="">{{/launchHosts}}
        <label for="extra">More recipe fields (JSON, the CLI's recipe schema)</label>
        <textarea id="extra" rows="3" cols="50">{}</textarea>
        <p><button>Train</button></p>
        <div id="train-error" class="error"></div>
        </form></div>
        <div>{{#guides}}<div class="guide"><strong>{{name}}</strong>: {{text}}</div>{{/guides}}</div></div>
        {{/body}}{{$scripts}}<script>
        document.getElementById('train-form').onsubmit = async (event) => {
          event.preventDefault();
          document.querySelectorAll('.invalid').forEach((el) => el.classList.remove('invalid'));
          const value = (id) => document.getElementById(id).value.trim();
          let recipe;
          try { recipe = JSON.parse(value('extra') || '{}'); } catch (error) { show('train-error', 'More recipe fields: ' + error.message); document.getElementById('extra').classList.add('invalid'); return; }
          recipe.method = value('recipe-method');
          for (const [id, key] of [['learning_rate', 'learning_rate'], ['max_steps', 'max_steps'], ['batch_size', 'batch_size']]) {
            if (value(id) !== '') { recipe[key] = Number(value(id)); }
          }
          if (recipe.method !== 'full' && value('lora_rank') !== '') { recipe.lora = Object.assign({ rank: Number(value('lora_rank')) }, recipe.lora || {}); }
          const body = { method: value('method'), dataset: value('dataset'), recipe };
          if (value('ranks') !== '' && value('ranks') !== '1') { body.ranks = Number(value('ranks')); }
          if (document.getElementById('hosts') && value('hosts') !== '') { body.hosts = value('hosts').split(',').map((host) => host.trim()); }
          if (value('output')) { body.output = value('output'); } else { body.model = value('model'); }
          try { const job = await api('POST', '/api/jobs', body); location.href = '/jobs/' + job.id; }
          catch (error) {
            show('train-error', error.message);
            document.getElementById('train-error').scrollIntoView();
            const field = (error.field || '').replace('recipe.', '');
            const input = document.querySelector('[name="' + error.field + '"]') || document.getElementById(field);
            if (input) { input.classList.add('invalid'); }
          }
        };
        </script>{{/scripts}}{{/page}}
        """#

    static let jobs = #"""
        {{<page}}{{$body}}
        <h2>Jobs</h2>
        <table><tr><th>id</th><th>method</th><th>model</th><th>dataset</th><th>state</th><th>created</th><th>reason</th></tr>
        {{#jobs}}<tr><td><a href="/jobs/{{id}}">{{id}}</a></td><td>{{method}}</td><td>{{modelID}}</td><td>{{datasetID}}</td>
        <td class="state-{{state}}">{{state}}</td><td>{{created}}</td><td class="muted">{{exitReason}}</td></tr>{{/jobs}}
        </table>
        {{^jobs}}<p class="muted">No jobs yet. <a href="/train">Train a model</a>.</p>{{/jobs}}
        {{/body}}{{/page}}
        """#

    static let job = #"""
        {{<page}}{{$body}}
        <h2>Job {{id}} <span id="state" class="state-{{state}}">{{state}}</span></h2>
        <p>{{method}} of <a href="/">{{modelID}}</a> on {{datasetID}}{{#parentOutputID}}, from output <a href="/outputs/{{.}}">{{.}}</a>{{/parentOutputID}} ·
        attempts <span id="attempts">{{attempts}}</span><span id="reason-part"{{^hasExitReason}} hidden{{/hasExitReason}}> · <span id="reason" class="muted">{{exitReason}}</span></span>
        <span id="output-link">{{#outputID}}· output <a href="/outputs/{{.}}">{{.}}</a>{{/outputID}}</span></p>
        <p><button id="cancel" onclick="cancelJob()">Cancel</button> <span id="cancel-error" class="error"></span></p>
        <div class="row"><div><h3 id="curve-title">Loss</h3><svg id="curve" width="520" height="220"></svg></div>
        <div><h3>Resources</h3><svg id="resources" width="520" height="220"></svg></div></div>
        <div id="evaluation"></div>
        <h3>Log</h3><pre class="log" id="log"></pre>
        <details><summary>Recipe</summary><pre>{{recipe}}</pre></details>
        {{/body}}{{$scripts}}<script>
        const jobID = '{{id}}';
        function plot(svgID, series) {
          const svg = document.getElementById(svgID), width = 520, height = 220, pad = 40;
          const points = series.flatMap((s) => s.points);
          if (points.length === 0) { svg.innerHTML = '<text x="20" y="110">no data yet</text>'; return; }
          const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
          const [x0, x1] = [Math.min(...xs), Math.max(...xs) || 1], [y0, y1] = [Math.min(...ys), Math.max(...ys)];
          const sx = (x) => pad + (x - x0) / ((x1 - x0) || 1) * (width - 2 * pad);
          const sy = (y) => height - pad + 10 - (y - y0) / ((y1 - y0) || 1) * (height - 2 * pad);
          let out = `<line x1="${pad}" y1="${height - pad + 10}" x2="${width - pad}" y2="${height - pad + 10}" stroke="#999"/>`;
          out += `<text x="4" y="${sy(y1) + 4}">${y1.toPrecision(3)}</text><text x="4" y="${sy(y0) + 4}">${y0.toPrecision(3)}</text>`;
          out += `<text x="${width - pad}" y="${height - 8}">${series[0].xLabel} ${x1}</text>`;
          series.forEach((s, index) => {
            out += `<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${s.points.map((p) => sx(p[0]) + ',' + sy(p[1])).join(' ')}"/>`;
            out += `<text x="${pad + 10 + index * 130}" y="14" fill="${s.color}">${s.name}</text>`;
          });
          svg.innerHTML = out;
        }
        function render(detail) {
          const job = detail.job, metrics = detail.metrics, resources = detail.resources;
          const state = document.getElementById('state'); state.textContent = job.state; state.className = 'state-' + job.state;
          show('attempts', job.attempts); show('reason', job.exitReason || '');
          document.getElementById('reason-part').hidden = !job.exitReason;
          if (detail.output) { document.getElementById('output-link').innerHTML = '· output <a href="/outputs/' + detail.output.id + '">' + detail.output.id + '</a>'; }
          document.getElementById('cancel').disabled = !['queued', 'running'].includes(job.state);
          if (detail.evaluation) { showEvaluation(detail.evaluation); }
          const key = metrics.some((m) => 'reward' in m) ? 'reward' : 'loss';
          show('curve-title', key === 'reward' ? 'Reward' : 'Loss');
          const train = metrics.filter((m) => typeof m[key] === 'number').map((m) => [m.step, m[key]]);
          const evals = metrics.filter((m) => typeof m['eval_' + key] === 'number').map((m) => [m.step, m['eval_' + key]]);
          plot('curve', [{ name: key, color: '#3b5bdb', points: train, xLabel: 'step' }, { name: 'eval ' + key, color: '#e8590c', points: evals, xLabel: 'step' }]);
          // A resumed job's samples start again at 0 s: continue its clock from the previous attempt's.
          let offset = 0, previous = 0;
          const clock = resources.map((r) => { if (r.elapsed_seconds < previous) { offset += previous; } previous = r.elapsed_seconds; return offset + r.elapsed_seconds; });
          const peak = Math.max(1, ...resources.map((r) => r.rss_mb));
          plot('resources', [
            { name: 'CPU cores', color: '#2b8a3e', points: resources.map((r, i) => [clock[i], r.cpu_cores]), xLabel: 'seconds' },
            { name: 'RSS (÷' + Math.round(peak) + ' MB)', color: '#ae3ec9', points: resources.map((r, i) => [clock[i], r.rss_mb / peak]), xLabel: 'seconds' }]);
        }
        function escapeHTML(text) { const div = document.createElement('div'); div.textContent = text; return div.innerHTML; }
        function showEvaluation(result) {
          const base = result.base ? result.base.metrics : null;
          let html = '<h3>Evaluation: ' + escapeHTML(result.spec.kind) + ' on ' + result.records + ' records</h3><table id="evaluation-metrics"><tr><th>metric</th><th>this model</th>' + (base ? '<th>base</th>' : '') + '</tr>';
          for (const name of Object.keys(result.scores.metrics).sort()) {
            html += '<tr><td>' + escapeHTML(name) + '</td><td>' + result.scores.metrics[name].toFixed(4) + '</td>' + (base ? '<td>' + base[name].toFixed(4) + '</td>' : '') + '</tr>';
          }
          html += '</table>';
          const answers = result.scores.answers.slice(0, 8);
          if (answers.length) {
            html += '<table><tr><th>prompt</th><th>this model</th>' + (result.base ? '<th>base</th>' : '') + '</tr>';
            answers.forEach((a, i) => { html += '<tr><td>' + escapeHTML(a.prompt.slice(-200)) + '</td><td>' + escapeHTML(a.answer) + (a.correct === undefined ? '' : a.correct ? ' ✓' : ' ✗') + '</td>' + (result.base ? '<td>' + escapeHTML(result.base.answers[i].answer) + '</td>' : '') + '</tr>'; });
            html += '</table>';
          }
          document.getElementById('evaluation').innerHTML = html;
        }
        async function refreshLog() { const response = await fetch('/api/jobs/' + jobID + '/logs'); const log = document.getElementById('log'); log.textContent = await response.text(); log.scrollTop = log.scrollHeight; }
        async function cancelJob() { try { render({ ...(await api('GET', '/api/jobs/' + jobID)), job: await api('POST', '/api/jobs/' + jobID + '/cancel') }); } catch (error) { show('cancel-error', error.message); } }
        const events = new EventSource('/api/jobs/' + jobID + '/events');
        events.onmessage = (event) => { render(JSON.parse(event.data)); refreshLog(); };
        events.addEventListener('end', () => events.close());
        api('GET', '/api/jobs/' + jobID).then(render); refreshLog();
        </script>{{/scripts}}{{/page}}
        """#

    static let output = #"""
        {{<page}}{{$body}}
        <h2>Output {{id}}</h2>
        <p>{{kind}} · {{bytes}} bytes · manifest sha256 <span class="muted">{{sha256}}</span> · made by <a href="/jobs/{{jobID}}">{{jobID}}</a></p>
        <p><button onclick="deploy()">Deploy</button> <a href="/train?output={{id}}">Train further from it</a> <span id="deploy-state"></span></p>
        <h3>Lineage</h3>
        <div id="lineage">{{{lineageSVG}}}</div>
        <h3>Files</h3>
        <table><tr><th>file</th><th>bytes</th><th>sha256</th></tr>
        {{#files}}<tr><td><a href="/api/outputs/{{outputID}}/files/{{name}}" download>{{name}}</a></td><td>{{bytes}}</td><td class="muted">{{sha256}}</td></tr>{{/files}}</table>
        {{/body}}{{$scripts}}<script>
        async function deploy() {
          show('deploy-state', 'starting…');
          try { const d = await api('POST', '/api/deployments', { output: '{{id}}' }); show('deploy-state', d.state + ' at ' + d.url + ' (model "{{id}}")'); }
          catch (error) { show('deploy-state', error.message); }
        }
        </script>{{/scripts}}{{/page}}
        """#

    static let playground = #"""
        {{<page}}{{$body}}
        <h2>Playground</h2>
        {{^deployments}}<p class="muted">Nothing is deployed: deploy an output from the catalogue first.</p>{{/deployments}}
        <form id="chat-form"><label for="deployment">Deployment and model</label>
        <select id="deployment">{{#deployments}}{{#models}}<option value="{{deployment}}|{{model}}">{{deployment}} · {{model}}</option>{{/models}}{{/deployments}}</select>
        <label for="prompt">Message</label><textarea id="prompt" rows="3" cols="70">What is the capital of France?</textarea>
        <label for="max_tokens">Max tokens</label><input id="max_tokens" value="64">
        <p><button>Send</button></p></form>
        <pre id="answer" class="log"></pre><div id="chat-error" class="error"></div>
        {{/body}}{{$scripts}}<script>
        document.getElementById('chat-form').onsubmit = async (event) => {
          event.preventDefault();
          const [deployment, model] = document.getElementById('deployment').value.split('|');
          show('answer', '…'); show('chat-error', '');
          try {
            const reply = await api('POST', '/api/deployments/' + deployment + '/chat', {
              model, messages: [{ role: 'user', content: document.getElementById('prompt').value }],
              max_tokens: Number(document.getElementById('max_tokens').value), temperature: 0 });
            show('answer', reply.choices[0].message.content);
          } catch (error) { show('answer', ''); show('chat-error', error.message); }
        };
        </script>{{/scripts}}{{/page}}
        """#
}
