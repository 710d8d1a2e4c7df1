"""Writes Sources/TemperGallery/GalleryOpenAPI.swift: the gallery API's OpenAPI 3.0.3 document, served at
/openapi.json. Edit the routes and schemas here and run `python3 Tools/gallery-test/make_openapi.py`.
"""
import json
import pathlib

def ref(name):
    return {"$ref": f"#/components/schemas/{name}"}

def resp(name):
    return {"$ref": f"#/components/responses/{name}"}

def json_content(schema):
    return {"application/json": {"schema": schema}}

ID = {"type": "string", "minLength": 1}
DATE = {"type": "string", "format": "date-time", "description": "ISO 8601, e.g. 2025-01-31T12:00:00Z."}
SHA = {"type": "string", "pattern": "^[0-9a-f]{64}$", "description": "Lowercase hex SHA-256."}
INT = {"type": "integer", "format": "int64"}

def nullable(schema, description=None):
    s = dict(schema)
    s["nullable"] = True
    if description:
        s["description"] = description
    return s

def with_desc(schema, description):
    s = dict(schema)
    s["description"] = description
    return s

def path_id(kind, example):
    return {
        "name": "id", "in": "path", "required": True,
        "description": f"The {kind}'s id.",
        "schema": {"type": "string", "minLength": 1, "example": example},
    }

def errors(*codes):
    names = {400: "BadRequest", 401: "Unauthorized", 404: "NotFound", 413: "PayloadTooLarge",
             422: "UnprocessableEntity", 500: "ServerError"}
    return {str(c): resp(names[c]) for c in codes}

def op(operation_id, summary, responses, *, tags, description=None, parameters=None, body=None):
    o = {"operationId": operation_id, "summary": summary, "tags": tags}
    if description:
        o["description"] = description
    if parameters:
        o["parameters"] = parameters
    if body:
        o["requestBody"] = body
    o["responses"] = responses
    return o

schemas = {
    "Health": {
        "type": "object", "required": ["status"],
        "properties": {"status": {"type": "string", "enum": ["ok"]}},
    },
    "Error": {
        "type": "object", "required": ["error"],
        "description": "Every error answers this, with the HTTP status repeated in `error.status`.",
        "properties": {
            "error": {
                "type": "object", "required": ["message", "field", "status"],
                "properties": {
                    "message": {"type": "string"},
                    "field": nullable({"type": "string"}, "The request field at fault (`path`, `name`, `format`, `file`, `method`, `model`, `dataset`, `output`, `recipe`, `recipe.<key>`, a JSON coding path), or null."),
                    "status": {"type": "integer", "minimum": 400, "maximum": 599},
                },
            }
        },
    },
    "ModelRecord": {
        "type": "object",
        "required": ["id", "name", "path", "architecture", "parameters", "contextLength", "createdAt"],
        "properties": {
            "id": with_desc(ID, "`m-` and 12 hex digits."),
            "name": {"type": "string"},
            "path": with_desc({"type": "string"}, "The model's folder in the gallery (its files linked from the artifact store)."),
            "architecture": with_desc({"type": "string"}, "`model_type` from config.json."),
            "parameters": with_desc(INT, "Weight count computed from config.json."),
            "contextLength": with_desc(INT, "`max_position_embeddings` from config.json."),
            "license": nullable({"type": "string"}, "`license:` from the model card's front matter; absent when it has none."),
            "createdAt": DATE,
        },
    },
    "DatasetRecord": {
        "type": "object",
        "required": ["id", "name", "format", "rows", "sha256", "bytes", "path", "statistics", "createdAt"],
        "properties": {
            "id": with_desc(ID, "`d-` and 12 hex digits."),
            "name": with_desc({"type": "string"}, "The uploaded file name."),
            "format": ref("DatasetFormat"),
            "rows": INT,
            "sha256": SHA,
            "bytes": INT,
            "path": {"type": "string"},
            "statistics": with_desc({"type": "string"}, "A JSON object encoded as a string: `{\"rows\": int, \"bytes\": int, \"meanRecordBytes\": number}`."),
            "createdAt": DATE,
        },
    },
    "DatasetFormat": {
        "type": "string", "enum": ["chat", "instruction", "text", "preference", "prompt"],
        "description": "`chat`, `instruction` or `text` train SFT; `preference` trains DPO; `prompt` trains GRPO.",
    },
    "TrainingMethod": {"type": "string", "enum": ["sft", "dpo", "grpo"], "description": "The trainers a job can be submitted for."},
    "JobMethod": {"type": "string", "enum": ["sft", "dpo", "grpo", "eval", "compress"],
                  "description": "What a job runs: a trainer, or an evaluation (`eval`, submitted through /api/evaluations)."},
    "JobState": {"type": "string", "enum": ["queued", "running", "succeeded", "failed", "cancelled"]},
    "JobRecord": {
        "type": "object",
        "required": ["id", "method", "modelID", "datasetID", "recipe", "state", "createdAt", "attempts", "cancelRequested"],
        "properties": {
            "id": with_desc(ID, "`j-` and 12 hex digits."),
            "method": ref("JobMethod"),
            "modelID": with_desc({"type": "string"}, "The base model (for a job that starts from an output: that output's base)."),
            "datasetID": {"type": "string"},
            "parentOutputID": nullable({"type": "string"}, "The output the job starts from; absent when it starts from a base model."),
            "recipe": with_desc({"type": "string"}, "The resolved recipe the job runs, as JSON text (an object encoded as a string)."),
            "state": ref("JobState"),
            "createdAt": DATE,
            "startedAt": nullable(DATE, "Absent until the job first runs."),
            "finishedAt": nullable(DATE, "Absent until the job ends."),
            "exitReason": nullable({"type": "string"}, "Why a failed or cancelled job ended."),
            "pid": nullable(INT, "The trainer's process id while it runs."),
            "attempts": with_desc(INT, "How many times a worker has started it (resumed jobs count again)."),
            "cancelRequested": {"type": "boolean"},
            "workerKey": nullable(INT, "The gallery worker process running it, while it runs (several may share a PostgreSQL registry)."),
            "ranks": with_desc(INT, "Its data-parallel processes (`temper launch --ranks`); 1 runs it as one process."),
            "hosts": nullable({"type": "string"}, "The launch hosts its ranks run on, comma-separated, one per rank; absent: the worker's machine."),
        },
    },
    "OutputRecord": {
        "type": "object",
        "required": ["id", "jobID", "kind", "path", "sha256", "bytes", "createdAt"],
        "properties": {
            "id": with_desc(ID, "`o-` and 12 hex digits."),
            "jobID": {"type": "string"},
            "kind": with_desc({"type": "string", "enum": ["adapter", "model", "gguf", "quantized"]}, "`adapter` (PEFT LoRA), `model` (full weights), `gguf` (a compressed file for llama.cpp and Ollama) or `quantized` (a model folder in the engine's int8 or q4 format, for `temper serve`)."),
            "path": {"type": "string"},
            "sha256": with_desc(SHA, "The hash of its manifest: the sorted `name sha256` lines of its files."),
            "bytes": INT,
            "createdAt": DATE,
        },
    },
    "ArtifactFile": {
        "type": "object", "required": ["ownerID", "name", "sha256", "bytes"],
        "properties": {
            "ownerID": with_desc({"type": "string"}, "The model or output the file belongs to."),
            "name": {"type": "string"},
            "sha256": SHA,
            "bytes": INT,
        },
    },
    "LineageEdge": {
        "type": "object", "required": ["fromID", "toID", "relation"],
        "properties": {
            "fromID": {"type": "string"},
            "toID": {"type": "string"},
            "relation": with_desc(
                {"type": "string", "enum": ["base_model", "dataset", "starts_from", "evaluated_by", "compressed_by", "produced"]},
                "`base_model`, `dataset`, `starts_from` (into a job), `evaluated_by` / `compressed_by` (an output into its evaluation or compression job) or `produced` (job to output)."),
        },
    },
    "DeploymentState": {"type": "string", "enum": ["starting", "running", "stopped", "failed"]},
    "DeploymentRecord": {
        "type": "object", "required": ["id", "modelID", "outputIDs", "state", "createdAt"],
        "description": "A managed `temper serve` process on loopback: a base model with any number of its adapter outputs (each served under its output id, the base under its model id), or a full-model output.",
        "properties": {
            "id": with_desc(ID, "`dep-` and 12 hex digits."),
            "modelID": {"type": "string"},
            "outputIDs": {"type": "array", "items": {"type": "string"}},
            "url": nullable({"type": "string"}, "The OpenAI base URL (`http://127.0.0.1:PORT/v1`); absent until the server has bound its port."),
            "state": ref("DeploymentState"),
            "createdAt": DATE,
            "pid": nullable(INT, "The server's process id while it runs."),
            "port": nullable({"type": "integer", "minimum": 1, "maximum": 65535}, "The server's loopback port."),
            "exitReason": nullable({"type": "string"}, "Why a failed deployment did not start."),
            "workerKey": nullable(INT, "The gallery worker process that serves it."),
        },
    },
    "ModelCard": {
        "type": "object", "required": ["model", "files"],
        "properties": {"model": ref("ModelRecord"), "files": {"type": "array", "items": ref("ArtifactFile")}},
    },
    "JobDetail": {
        "type": "object", "required": ["job", "metrics", "resources"],
        "properties": {
            "job": ref("JobRecord"),
            "output": {"allOf": [ref("OutputRecord")], "nullable": True,
                       "description": "The job's output once it succeeded; absent before."},
            "metrics": {"type": "array", "description": "The trainer's metrics.jsonl, one object a line (a line still being written is left out).",
                        "items": {"type": "object", "additionalProperties": True}},
            "resources": {"type": "array", "description": "The worker's resources.jsonl samples, one object a line.",
                          "items": {"type": "object", "additionalProperties": True}},
            "evaluation": {"nullable": True, "description": "An evaluation job's result (`temper eval`'s JSON); absent otherwise."},
            "compression": {"nullable": True, "description": "A compression job's report (`temper compress`'s compression.json: format, file, bytes_before, bytes_after, quality rows); absent otherwise."},
        },
    },
    "OutputCard": {
        "type": "object", "required": ["output", "files", "lineage", "usedBy"],
        "properties": {
            "output": ref("OutputRecord"),
            "files": {"type": "array", "items": ref("ArtifactFile")},
            "lineage": {"type": "array", "items": ref("LineageEdge"),
                        "description": "Everything it came from, transitively: its job, base model, dataset and earlier outputs and their jobs."},
            "usedBy": {"type": "array", "items": ref("LineageEdge"), "description": "The edges that start at it: jobs that start from it."},
        },
    },
    "ImportModelRequest": {
        "type": "object", "required": ["path"],
        "properties": {
            "path": {"type": "string", "minLength": 1,
                     "description": "A Hugging Face model folder on the gallery's machine (config.json and .safetensors weights)."},
            "name": nullable({"type": "string"}, "Defaults to the folder's name."),
        },
    },
    "SubmitJobRequest": {
        "type": "object", "required": ["method", "dataset"],
        "properties": {
            "method": ref("TrainingMethod"),
            "model": nullable({"type": "string"}, "The base model's id; needed unless `output` is given (then, if given, it must be that output's base)."),
            "dataset": with_desc({"type": "string"}, "A dataset id whose format fits the method."),
            "output": nullable({"type": "string"}, "An output to start from (SFT -> DPO -> GRPO)."),
            "recipe": {"type": "object", "nullable": True, "additionalProperties": True,
                       "description": "The method's hyperparameters in the CLI's recipe schema; the gallery sets `model`, `data`, `output` and `adapter` itself (giving them is a 422). Without `max_steps` or `epochs` the job runs one epoch."},
            "ranks": {"type": "integer", "nullable": True, "description": "Data-parallel processes (`temper launch --ranks`, 1 to 64), each taking the recipe's batch size (GRPO: its prompts per generation); 1 by default."},
            "hosts": {"type": "array", "items": {"type": "string"}, "nullable": True,
                      "description": "One of the gallery's launch hosts (`gallery serve --launch-hosts`) per rank; a host may take several. Absent: the ranks run on the worker's machine."},
        },
    },
    "EvaluateRequest": {
        "type": "object", "required": ["dataset", "kind"],
        "description": "Give `output` (evaluated with its base model; `compare_base` also evaluates the base) or `model`.",
        "properties": {
            "output": nullable({"type": "string"}, "An output id."),
            "model": nullable({"type": "string"}, "A model id (used when `output` is absent)."),
            "dataset": with_desc({"type": "string"}, "A dataset id whose format fits the kind: loss (chat, instruction, text), preference (preference), accuracy and answers (prompt)."),
            "kind": {"type": "string", "enum": ["loss", "accuracy", "preference", "answers"]},
            "compare_base": nullable({"type": "boolean"}, "Also evaluate the base without the adapter."),
            "limit": nullable({"type": "integer", "minimum": 1}, "Evaluate the first N records only."),
            "max_new_tokens": nullable({"type": "integer", "minimum": 1}, "New tokens per greedy answer."),
        },
    },
    "CompressRequest": {
        "type": "object", "required": ["dataset", "format"],
        "description": "Give `output` (an adapter is merged into its base first) or `model`.",
        "properties": {
            "output": nullable({"type": "string"}, "An output id (not a GGUF one)."),
            "model": nullable({"type": "string"}, "A model id (used when `output` is absent)."),
            "dataset": with_desc({"type": "string"}, "A text dataset (`{\"text\": ...}` lines) for the quality measurement."),
            "format": {"type": "string", "enum": ["q8_0", "q4_0", "int8", "q4"], "description": "q8_0 or q4_0: a GGUF for llama.cpp and Ollama; int8 or q4: a model folder in the engine's formats, for temper serve."},
        },
    },
    "DeployRequest": {
        "type": "object",
        "description": "Give `output` (deploys it with its base model) or `model` (the base alone); neither is a 422.",
        "properties": {
            "output": nullable({"type": "string"}, "An output id."),
            "model": nullable({"type": "string"}, "A model id (used when `output` is absent)."),
        },
    },
    "DatasetRecordLine": {
        "type": "object", "additionalProperties": True,
        "description": "One record: `{\"messages\": [{\"role\", \"content\"}]}` (chat), `{\"instruction\", \"output\"}` (instruction), `{\"text\"}` (text), `{\"prompt\", \"chosen\", \"rejected\"}` (preference) or `{\"prompt\": [messages]}` (prompt).",
        "anyOf": [
            {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}},
            {"type": "object", "required": ["instruction", "output"],
             "properties": {"instruction": {"type": "string"}, "output": {"type": "string"}}},
            {"type": "object", "required": ["messages"],
             "properties": {"messages": {"type": "array", "items": ref("ChatMessage")}}},
            {"type": "object", "required": ["prompt", "chosen", "rejected"]},
            {"type": "object", "required": ["prompt"],
             "properties": {"prompt": {"type": "array", "items": ref("ChatMessage")}}},
        ],
    },
    "ChatMessage": {
        "type": "object", "required": ["role", "content"],
        "properties": {"role": {"type": "string", "enum": ["system", "user", "assistant"]}, "content": {"type": "string"}},
    },
}

responses = {
    "BadRequest": {"description": "Malformed JSON, a missing field or a field of the wrong type.", "content": json_content(ref("Error"))},
    "Unauthorized": {
        "description": "No or an invalid bearer token (only when the gallery is bound beyond loopback).",
        "headers": {"WWW-Authenticate": {"schema": {"type": "string", "enum": ["Bearer"]}}},
        "content": json_content(ref("Error")),
    },
    "NotFound": {"description": "No such id.", "content": json_content(ref("Error"))},
    "PayloadTooLarge": {"description": "The body is over the limit.", "content": json_content(ref("Error"))},
    "UnprocessableEntity": {"description": "Well-formed but invalid values.", "content": json_content(ref("Error"))},
    "ServerError": {"description": "The gallery failed (storage, database or a process it runs).", "content": json_content(ref("Error"))},
}

def array_of(name):
    return {"type": "array", "items": ref(name)}

def ok(description, schema, code="200"):
    return {code: {"description": description, "content": json_content(schema)}}

paths = {
    "/health": {"get": {**op("getHealth", "Liveness", ok("Alive.", ref("Health")), tags=["service"],
                               description="Never needs a token."), "security": []}},
    "/openapi.json": {"get": {**op("getOpenAPI", "This document", ok("The OpenAPI 3.0 document.", {"type": "object"}),
                                   tags=["service"], description="Never needs a token."), "security": []}},
    "/api/models": {
        "get": op("listModels", "Base models, oldest first", {**ok("The models.", array_of("ModelRecord")), **errors(401, 500)}, tags=["models"]),
        "post": op("importModel", "Import a Hugging Face model folder from the gallery's machine",
                   {**ok("Imported.", ref("ModelRecord"), "201"), **errors(400, 401, 413, 422, 500)}, tags=["models"],
                   description="Its files are hashed into the artifact store. A folder without config.json or .safetensors weights is a 422 (field `path`). The JSON body may be at most 1 MiB.",
                   body={"required": True, "content": {"application/json": {"schema": ref("ImportModelRequest"), "example": {
                       "path": "/srv/models/Qwen2.5-0.5B-Instruct", "name": "qwen2.5-0.5b-instruct"}}}}),
    },
    "/api/models/{id}": {
        "get": op("getModel", "A model and its files", {**ok("The model.", ref("ModelCard")), **errors(401, 404, 500)},
                  tags=["models"], parameters=[path_id("model", "m-0123456789ab")]),
    },
    "/api/datasets": {
        "get": op("listDatasets", "Datasets, oldest first", {**ok("The datasets.", array_of("DatasetRecord")), **errors(401, 500)}, tags=["datasets"]),
        "post": op(
            "uploadDataset", "Upload a JSON or JSONL dataset",
            {**ok("Stored.", ref("DatasetRecord"), "201"), **errors(401, 413, 422, 500)}, tags=["datasets"],
            description="The body is the file itself (a JSON array of records, or JSON lines), whatever its content type (the gallery ignores it); at most 1 GiB. Every record is checked with the trainers' readers: a file with any bad record, no record, a missing or bad `name` or an unknown `format` is a 422 (field `file`, `name` or `format`).",
            parameters=[
                {"name": "name", "in": "query", "required": True, "description": "The file name (without '/'; `.jsonl` is added unless it ends in .json or .jsonl).",
                 "schema": {"type": "string", "minLength": 1, "pattern": "^[^/]+$", "example": "train.jsonl"}},
                {"name": "format", "in": "query", "required": False,
                 "description": "Forces the record layout; detected from the first record when absent.",
                 "schema": ref("DatasetFormat"), "example": "text"},
            ],
            body={"required": True, "content": {
                "application/json": {"schema": {"type": "array", "minItems": 1, "items": ref("DatasetRecordLine")},
                                     "example": [{"text": "The quick brown fox."}, {"text": "Jumps over the lazy dog."}]},
                "text/plain": {"schema": {"type": "string", "description": "JSON lines: one record a line (as `application/x-ndjson` or any other content type)."},
                                         "example": "{\"text\": \"The quick brown fox.\"}\n"},
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            }}),
    },
    "/api/datasets/{id}": {
        "get": op("getDataset", "A dataset", {**ok("The dataset.", ref("DatasetRecord")), **errors(401, 404, 500)},
                  tags=["datasets"], parameters=[path_id("dataset", "d-0123456789ab")]),
    },
    "/api/jobs": {
        "get": op("listJobs", "Training jobs, newest first", {**ok("The jobs.", array_of("JobRecord")), **errors(401, 500)}, tags=["jobs"]),
        "post": op("submitJob", "Queue a training job",
                   {**ok("Queued.", ref("JobRecord"), "201"), **errors(400, 401, 404, 413, 422, 500)}, tags=["jobs"],
                   description="Unknown dataset, model or output ids are a 404; an unknown method, a dataset of the wrong format for the method, a recipe that does not validate or one that sets `model`, `data`, `output` or `adapter`, or neither `model` nor `output` are a 422. The JSON body may be at most 1 MiB.",
                   body={"required": True, "content": {"application/json": {"schema": ref("SubmitJobRequest"), "example": {
                       "method": "sft", "model": "m-0123456789ab", "dataset": "d-0123456789ab",
                       "recipe": {"learning_rate": 0.0002, "max_steps": 10}}}}}),
    },
    "/api/jobs/{id}": {
        "get": op("getJob", "A job with its output, metrics and resource samples", {**ok("The job.", ref("JobDetail")), **errors(401, 404, 500)},
                  tags=["jobs"], parameters=[path_id("job", "j-0123456789ab")]),
    },
    "/api/jobs/{id}/logs": {
        "get": op("getJobLogs", "A job's log", {
            "200": {"description": "The log so far (empty before the job starts).",
                    "content": {"text/plain": {"schema": {"type": "string"}}}},
            **errors(401, 404, 500)}, tags=["jobs"], parameters=[path_id("job", "j-0123456789ab")]),
    },
    "/api/jobs/{id}/cancel": {
        "post": op("cancelJob", "Cancel a job",
                   {**ok("A queued job is cancelled at once; a running one is flagged (`cancelRequested`) and its worker stops it at a checkpoint; a finished one is unchanged.", ref("JobRecord"), "202"), **errors(401, 404, 500)},
                   tags=["jobs"], parameters=[path_id("job", "j-0123456789ab")]),
    },
    "/api/jobs/{id}/events": {
        "get": op("followJob", "A job as server-sent events", {
            "200": {"description": "`data:` events carrying the job's detail (as GET /api/jobs/{id}) whenever it changes, then an `end` event once it has finished.",
                    "content": {"text/event-stream": {"schema": {"type": "string"}}}},
            **errors(401, 404, 500)}, tags=["jobs"], parameters=[path_id("job", "j-0123456789ab")]),
    },
    "/api/evaluations": {
        "post": op("evaluate", "Queue an evaluation job (`temper eval`)",
                   {**ok("Queued (a job with method `eval`).", ref("JobRecord"), "201"), **errors(400, 401, 404, 413, 422, 500)}, tags=["jobs"],
                   description="Unknown ids are a 404; an unknown kind, a dataset of the wrong format for the kind, or `compare_base` without an adapter output are a 422. The result appears as `evaluation` in GET /api/evaluations/{id} once the job has succeeded.",
                   body={"required": True, "content": {"application/json": {"schema": ref("EvaluateRequest"), "example": {
                       "output": "o-0123456789ab", "dataset": "d-0123456789ab", "kind": "loss", "compare_base": True}}}}),
    },
    "/api/compressions": {
        "post": op("compress", "Queue a compression job (`temper compress`): a q8_0 or q4_0 GGUF, or an int8 or q4 folder for the engine, with its size and quality",
                   {**ok("Queued (a job with method `compress`); its output is a `gguf` output.", ref("JobRecord"), "201"), **errors(400, 401, 404, 413, 422, 500)}, tags=["jobs"],
                   description="Unknown ids are a 404; a dataset that is not text, an unknown format or a GGUF output are a 422. The report appears as `compression` in GET /api/jobs/{id}.",
                   body={"required": True, "content": {"application/json": {"schema": ref("CompressRequest"), "example": {
                       "output": "o-0123456789ab", "dataset": "d-0123456789ab", "format": "q8_0"}}}}),
    },
    "/api/evaluations/{id}": {
        "get": op("getEvaluation", "An evaluation job with its result", {**ok("The job; `evaluation` holds the result once it has succeeded.", ref("JobDetail")), **errors(401, 404, 500)},
                  tags=["jobs"], parameters=[path_id("job", "j-0123456789ab")]),
    },
    "/api/deployments/{id}/chat": {
        "post": op("chatWithDeployment", "A chat completion from a running deployment (the playground's route)", {
            "200": {"description": "The deployment's OpenAI chat completion, passed through.", "content": {"application/json": {"schema": {"type": "object", "additionalProperties": True}}}},
            "409": {"description": "The deployment is not running.", "content": json_content(ref("Error"))},
            **errors(400, 401, 404, 422, 500)}, tags=["deployments"], parameters=[path_id("deployment", "dep-0123456789ab")],
            body={"required": True, "content": {"application/json": {"schema": {"type": "object", "additionalProperties": True}, "example": {
                "model": "o-0123456789ab", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 16}}}}),
    },
    "/api/outputs": {
        "get": op("listOutputs", "Trained outputs, oldest first", {**ok("The outputs.", array_of("OutputRecord")), **errors(401, 500)}, tags=["outputs"]),
    },
    "/api/outputs/{id}/files/{name}": {
        "get": op("downloadOutputFile", "Download one file of an output", {
            "200": {"description": "The file, as an attachment.", "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
            **errors(401, 404, 500)}, tags=["outputs"],
            parameters=[path_id("output", "o-0123456789ab"),
                        {"name": "name", "in": "path", "required": True, "description": "The file's name in the output.",
                         "schema": {"type": "string"}, "example": "adapter_model.safetensors"}]),
    },
    "/api/outputs/{id}": {
        "get": op("getOutput", "An output, its files and lineage", {**ok("The output.", ref("OutputCard")), **errors(401, 404, 500)},
                  tags=["outputs"], parameters=[path_id("output", "o-0123456789ab")]),
    },
    "/api/deployments": {
        "get": op("listDeployments", "Deployments, newest first", {**ok("The deployments.", array_of("DeploymentRecord")), **errors(401, 500)}, tags=["deployments"]),
        "post": op("deploy", "Deploy an output or a base model as an OpenAI-compatible API",
                   {**ok("Started (`running`), or `failed` when it never answered /health. Deploying another adapter of a base that already has an adapter server restarts that server with every adapter and answers its record.", ref("DeploymentRecord"), "201"),
                    **errors(400, 401, 404, 413, 422, 500)}, tags=["deployments"],
                   description="Answers when the server is up. Unknown ids are a 404; neither `output` nor `model` is a 422; a server that exits before binding its port is a 500. The JSON body may be at most 1 MiB.",
                   body={"required": True, "content": {"application/json": {"schema": ref("DeployRequest"), "example": {"output": "o-0123456789ab"}}}}),
    },
    "/api/deployments/{id}": {
        "get": op("getDeployment", "A deployment", {**ok("The deployment.", ref("DeploymentRecord")), **errors(401, 404, 500)},
                  tags=["deployments"], parameters=[path_id("deployment", "dep-0123456789ab")]),
    },
    "/api/deployments/{id}/stop": {
        "post": op("stopDeployment", "Stop a deployment",
                   {**ok("Stopped (SIGTERM: requests in flight finish first).", ref("DeploymentRecord"), "202"), **errors(401, 404, 500)},
                   tags=["deployments"], parameters=[path_id("deployment", "dep-0123456789ab")]),
    },
}

document = {
    "openapi": "3.0.3",
    "info": {
        "title": "Temper gallery",
        "version": "1",
        "description": "The gallery's JSON API: base models, datasets, training jobs, their outputs with lineage, and deployments. Errors answer `{\"error\": {\"message\", \"field\", \"status\"}}`. Dates are ISO 8601. Optional fields of a record are left out when they have no value. Bound beyond loopback, every route but /health and /openapi.json needs `Authorization: Bearer <token>` (made by `temper gallery token create`).",
    },
    "servers": [{"url": "/"}],
    "security": [{}, {"bearerAuth": []}],
    "tags": [{"name": n} for n in ["service", "models", "datasets", "jobs", "outputs", "deployments"]],
    "paths": paths,
    "components": {
        "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer",
                                           "description": "A token from `temper gallery token create`; required only when the gallery is bound beyond loopback."}},
        "schemas": schemas,
        "responses": responses,
    },
}

text = json.dumps(document, indent=2, ensure_ascii=False)
assert '"""#' not in text
swift = (
    "/// The gallery API's OpenAPI 3.0.3 document (JSON), which ``GalleryAPI`` serves at `/openapi.json`: every\n"
    "/// route with its request bodies, parameters, responses and record schemas (field names are the records'\n"
    "/// property names; optional fields are left out when nil). Keep it in step with ``GalleryAPI`` and the records.\n"
    "enum GalleryOpenAPI {\n"
    "    static let document: String = #\"\"\"\n"
    + "\n".join(("        " + line) if line else "" for line in text.split("\n"))
    + "\n        \"\"\"#\n}\n"
)
open(pathlib.Path(__file__).resolve().parents[2] / "Sources/TemperGallery/GalleryOpenAPI.swift", "w").write(swift)
print(len(text))
