/// The gallery API's OpenAPI 3.0.3 document (JSON), which ``GalleryAPI`` serves at `/openapi.json`: every
/// route with its request bodies, parameters, responses and record schemas (field names are the records'
/// property names; optional fields are left out when nil). Keep it in step with ``GalleryAPI`` and the records.
enum GalleryOpenAPI {
    static let document: String = #"""
        {
          "openapi": "3.0.3",
          "info": {
            "title": "Temper gallery",
            "version": "1",
            "description": "The gallery's JSON API: base models, datasets, training jobs, their outputs with lineage, and deployments. Errors answer `{\"error\": {\"message\", \"field\", \"status\"}}`. Dates are ISO 8601. Optional fields of a record are left out when they have no value. Bound beyond loopback, every route but /health and /openapi.json needs `Authorization: Bearer <token>` (made by `temper gallery token create`)."
          },
          "servers": [
            {
              "url": "/"
            }
          ],
          "security": [
            {},
            {
              "bearerAuth": []
            }
          ],
          "tags": [
            {
              "name": "service"
            },
            {
              "name": "models"
            },
            {
              "name": "datasets"
            },
            {
              "name": "jobs"
            },
            {
              "name": "outputs"
            },
            {
              "name": "deployments"
            }
          ],
          "paths": {
            "/health": {
              "get": {
                "operationId": "getHealth",
                "summary": "Liveness",
                "tags": [
                  "service"
                ],
                "description": "Never needs a token.",
                "responses": {
                  "200": {
                    "description": "Alive.",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/Health"
                        }
                      }
                    }
                  }
                },
                "security": []
              }
            },
            "/openapi.json": {
              "get": {
                "operationId": "getOpenAPI",
                "summary": "This document",
                "tags": [
                  "service"
                ],
                "description": "Never needs a token.",
                "responses": {
                  "200": {
                    "description": "The OpenAPI 3.0 document.",
                    "content": {
                      "application/json": {
                        "schema": {
                          "type": "object"
                        }
                      }
                    }
                  }
                },
                "security": []
              }
            },
            "/api/models": {
              "get": {
                "operationId": "listModels",
                "summary": "Base models, oldest first",
                "tags": [
                  "models"
                ],
                "responses": {
                  "200": {
                    "description": "The models.",
                    "content": {
                      "application/json": {
                        "schema": {
                          "type": "array",
                          "items": {
                            "$ref": "#/components/schemas/ModelRecord"
                          }
                        }
                      }
                    }
                  },
                  "401": {
                    "$ref": "#/components/responses/Unauthorized"
                  },
                  "500": {
                    "$ref": "#/components/responses/ServerError"
                  }
                }
              },
              "post": {
                "operationId": "importModel",
                "summary": "Import a Hugging Face model folder from the gallery's machine",
                "tags": [
                  "models"
                ],
                "description": "Its files are hashed into the artifact store. A folder without config.json or .safetensors weights is a 422 (field `path`). The JSON body may be at most 1 MiB.",
                "requestBody": {
                  "required": true,
                  "content": {
                    "application/json": {
                      "schema": {
                        "$ref": "#/components/schemas/ImportModelRequest"
                      },
                      "example": {
                        "path": "/srv/models/Qwen2.5-0.5B-Instruct",
                        "name": "qwen2.5-0.5b-instruct"
                      }
                    }
                  }
                },
                "responses": {
                  "201": {
                    "description": "Imported.",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/ModelRecord"
                        }
                      }
                    }
                  },
                  "400": {
                    "$ref": "#/components/responses/BadRequest"
                  },
                  "401": {
                    "$ref": "#/components/responses/Unauthorized"
                  },
                  "413": {
                    "$ref": "#/components/responses/PayloadTooLarge"
                  },
                  "422": {
                    "$ref": "#/components/responses/UnprocessableEntity"
                  },
                  "500": {
                    "$ref": "#/components/responses/ServerError"
                  }
                }
              }
            },
            "/api/models/{id}": {
              "get": {
                "operationId": "getModel",
                "summary": "A model and its files",
                "tags": [
                  "models"
                ],
                "parameters": [
                  {
                    "name": "id",
                    "in": "path",
                    "required": true,
                    "description": "The model's id.",
                    "schema": {
                      "type": "string",
                      "minLength": 1,
                      "example": "m-0123456789ab"
                    }
                  }
                ],
                "responses": {
                  "200": {
                    "description": "The model.",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/ModelCard"
                        }
                      }
                    }
                  },
                  "401": {
                    "$ref": "#/components/responses/Unauthorized"
                  },
                  "404": {
                    "$ref": "#/components/responses/NotFound"
                  },
                  "500": {
                    "$ref": "#/components/responses/ServerError"
                  }
                }
              }
            },
            "/api/datasets": {
              "get": {
                "operationId": "listDatasets",
                "summary": "Datasets, oldest first",
                "tags": [
                  "datasets"
                ],
                "responses": {
                  "200": {
                    "description": "The datasets.",
                    "content": {
                      "application/json": {
                        "schema": {
                          "type": "array",
                          "items": {
                            "$ref": "#/components/schemas/DatasetRecord"
                          }
                        }
                      }
                    }
                  },
                  "401": {
                    "$ref": "#/components/responses/Unauthorized"
                  },
                  "500": {
                    "$ref": "#/components/responses/ServerError"
                  }
                }
              },
              "post": {
                "operationId": "uploadDataset",
                "summary": "Upload a JSON or JSONL dataset",
                "tags": [
                  "datasets"
                ],
                "description": "The body is the file itself (a JSON array of records, or JSON lines), whatever its content type (the gallery ignores it); at most 1 GiB. Every record is checked with the trainers' readers: a file with any bad record, no record, a missing or bad `name` or an unknown `format` is a 422 (field `file`, `name` or `format`).",
                "parameters": [
                  {
                    "name": "name",
                    "in": "query",
                    "required": true,
                    "description": "The file name (without '/'; `.jsonl` is added unless it ends in .json or .jsonl).",
                    "schema": {
                      "type": "string",
                      "minLength": 1,
                      "pattern": "^[^/]+$",
                      "example": "train.jsonl"
                    }
                  },
                  {
                    "name": "format",
                    "in": "query",
                    "required": false,
                    "description": "Forces the record layout; detected from the first record when absent.",
                    "schema": {
                      "$ref": "#/components/schemas/DatasetFormat"
                    },
                    "example": "text"
                  }
                ],
                "requestBody": {
                  "required": true,
                  "content": {
                    "application/json": {
                      "schema": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                          "$ref": "#/components/schemas/DatasetRecordLine"
                        }
                      },
                      "example": [
                        {
                          "text": "The quick brown fox."
                        },
                        {
                          "text": "Jumps over the lazy dog."
                        }
                      ]
                    },
                    "text/plain": {
                      "schema": {
                        "type": "string",
                        "description": "JSON lines: one record a line (as `application/x-ndjson` or any other content type)."
                      },
                      "example": "{\"text\": \"The quick brown fox.\"}\n"
                    },
                    "application/octet-stream": {
                      "schema": {
                        "type": "string",
                        "format": "binary"
                      }
                    }
                  }
                },
                "responses": {
                  "201": {
                    "description": "Stored.",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/DatasetRecord"
                        }
                      }
                    }
                  },
                  "401": {
                    "$ref": "#/components/responses/Unauthorized"
                  },
                  "413": {
                    "$ref": "#/components/responses/PayloadTooLarge"
                  },
                  "422": {
                    "$ref": "#/components/responses/UnprocessableEntity"
                  },
                  "500": {
                    "$ref": "#/components/responses/ServerError"
                  }
                }
              }
            },
            "/api/datasets/{id}": {
              "get": {
                "operationId": "getDataset",
                "summary": "A dataset",
                "tags": [
                  "datasets"
                ],
                "parameters": [
                  {
                    "name": "id",
                    "in": "path",
                    "required": true,
                    "description": "The dataset's id.",
                    "schema": {
                      "type": "string",
                      "minLength": 1,
                      "example": "d-0123456789ab"
                    }
                  }
                ],
                "responses": {
                  "200": {
                    "description": "The dataset.",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/DatasetRecord"
                        }
                      }
                    }
                  },
                  "401": {
                    "$ref": "#/components/responses/Unauthorized"
                  },
                  "404": {
                    "$ref": "#/components/responses/NotFound"
                  },
                  "500": {
                    "$ref": "#/components/responses/ServerError"
                  }
                }
              }
            },
            "/api/jobs": {
              "get": {
                "operationId": "listJobs",
                "summary": "Training jobs, newest first",
                "tags": [
                  "jobs"
                ],
                "responses": {
                  "200": {
                    "description": "The jobs.",
                    "content": {
                      "application/json": {
                        "schema": {
                          "type": "array",
                          "items": {
                            "$ref": "#/components/schemas/JobRecord"
                          }
                        }
                      }
                    }
                  },
                  "401": {
                    "$ref": "#/components/responses/Unauthorized"
                  },
                  "500": {
                    "$ref": "#/components/responses/ServerError"
                  }
                }
              },
              "post": {
                "operationId": "submitJob",
                "summary": "Queue a training job",
                "tags": [
                  "jobs"
                ],
                "description": "Unknown dataset, model or output ids are a 404; an unknown method, a dataset of the wrong format for the method, a recipe that does not validate or one that sets `model`, `data`, `output` or `adapter`, or neither `model` nor `output` are a 422. The JSON body may be at most 1 MiB.",
                "requestBody": {
                  "required": true,
                  "content": {
                    "application/json": {
                      "schema": {
                        "$ref": "#/components/schemas/SubmitJobRequest"
                      },
                      "example": {
                        "method": "sft",
                        "model": "m-0123456789ab",
                        "dataset": "d-0123456789ab",
                        "recipe": {
                          "learning_rate": 0.0002,
                          "max_steps": 10
                        }
                      }
                    }
                  }
                },
                "responses": {
                  "201": {
                    "description": "Queued.",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/JobRecord"
                        }
                      }
                    }
                  },
                  "400": {
                    "$ref": "#/components/responses/BadRequest"
                  },
                  "401": {
                    "$ref": "#/components/responses/Unauthorized"
                  },
                  "404": {
                    "$ref": "#/components/responses/NotFound"
                  },
                  "413": {
                    "$ref": "#/components/responses/PayloadTooLarge"
                  },
                  "422": {
                    "$ref": "#/components/responses/UnprocessableEntity"
                  },
                  "500": {
                    "$ref": "#/components/responses/ServerError"
                  }
                }
              }
            },
            "/api/jobs/{id}": {
              "get": {
                "operationId": "getJob",
                "summary": "A job with its output, metrics and resource samples",
                "tags": [
                  "jobs"
                ],
                "parameters": [
                  {
                    "name": "id",
                    "in": "path",
                    "required": true,
                    "description": "The job's id.",
                    "schema": {
                      "type": "string",
                      "minLength": 1,
                      "example": "j-0123456789ab"
                    }
                  }
                ],
                "responses": {
                  "200": {
                    "description": "The job.",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/JobDetail"
                        }
                      }
                    }
                  },
                  "401": {
                    "$ref": "#/components/responses/Unauthorized"
                  },
                  "404": {
                    "$ref": "#/components/responses/NotFound"
                  },
                  "500": {
                    "$ref": "#/components/responses/ServerError"
                  }
                }
              }
            },
            "/api/jobs/{id}/logs": {
              "get": {
                "operationId": "getJobLogs",
                "summary": "A job's log",
                "tags": [
                  "jobs"
                ],
                "parameters": [
                  {
                    "name": "id",
                    "in": "path",
                    "required": true,
                    "description": "The job's id.",
                    "schema": {
                      "type": "string",
                      "minLength": 1,
                      "example": "j-0123456789ab"
                    }
                  }
                ],
                "responses": {
                  "200": {
                    "description": "The log so far (empty before the job starts).",
                    "content": {
                      "text/plain": {
                        "schema": {
                          "type": "string"
                        }
                      }
                    }
                  },
                  "401": {
                    "$ref": "#/components/responses/Unauthorized"
                  },
                  "404": {
                    "$ref": "#/components/responses/NotFound"
                  },
                  "500": {
                    "$ref": "#/components/responses/ServerError"
                  }
                }
              }
            },
            "/api/jobs/{id}/cancel": {
              "post": {
                "operationId": "cancelJob",
                "summary": "Cancel a job",
                "tags": [
                  "jobs"
                ],
                "parameters": [
                  {
                    "name": "id",
                    "in": "path",
                    "required": true,
                    "description": "The job's id.",
                    "schema": {
                      "type": "string",
                      "minLength": 1,
                      "example": "j-0123456789ab"
                    }
                  }
                ],
                "responses": {
                  "202": {
                    "description": "A queued job is cancelled at once; a running one is flagged (`cancelRequested`) and its worker stops it at a checkpoint; a finished one is unchanged.",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/JobRecord"
                        }
                      }
                    }
                  },
                  "401": {
                    "$ref": "#/components/responses/Unauthorized"
                  },
                  "404": {
                    "$ref": "#/components/responses/NotFound"
                  },
                  "500": {
                    "$ref": "#/components/responses/ServerError"
                  }
                }
              }
            },
            "/api/jobs/{id}/events": {
              "get": {
                "operationId": "followJob",
                "summary": "A job as server-sent events",
                "tags": [
                  "jobs"
                ],
                "parameters": [
                  {
                    "name": "id",
                    "in": "path",
                    "required": true,
                    "description": "The job's id.",
                    "schema": {
                      "type": "string",
                      "minLength": 1,
                      "example": "j-0123456789ab"
                    }
                  }
                ],
                "responses": {
                  "200": {
                    "description": "`data:` events carrying the job's detail (as GET /api/jobs/{id}) whenever it changes, then an `end` event once it has finished.",
                    "content": {
                      "text/event-stream": {
                        "schema": {
                          "type": "string"
                        }
                      }
                    }
                  },
                  "401": {
                    "$ref": "#/components/responses/Unauthorized"
                  },
                  "404": {
                    "$ref": "#/components/responses/NotFound"
                  },
                  "500": {
                    "$ref": "#/components/responses/ServerError"
                  }
                }
              }
            },
            "/api/evaluations": {
              "post": {
                "operationId": "evaluate",
                "summary": "Queue an evaluation job (`temper eval`)",
                "tags": [
                  "jobs"
                ],
                "description": "Unknown ids are a 404; an unknown kind, a dataset of the wrong format for the kind, or `compare_base` without an adapter output are a 422. The result appears as `evaluation` in GET /api/evaluations/{id} once the job has succeeded.",
                "requestBody": {
                  "required": true,
                  "content": {
                    "application/json": {
                      "schema": {
                        "$ref": "#/components/schemas/EvaluateRequest"
                      },
                      "example": {
                        "output": "o-0123456789ab",
                        "dataset": "d-0123456789ab",
                        "kind": "loss",
                        "compare_base": true
                      }
                    }
                  }
                },
                "responses": {
                  "201": {
                    "description": "Queued (a job with method `eval`).",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/JobRecord"
                        }
                      }
                    }
                  },
                  "400": {
                    "$ref": "#/components/responses/BadRequest"
                  },
                  "401": {
                    "$ref": "#/components/responses/Unauthorized"
                  },
                  "404": {
                    "$ref": "#/components/responses/NotFound"
                  },
                  "413": {
                    "$ref": "#/components/responses/PayloadTooLarge"
                  },
                  "422": {
                    "$ref": "#/components/responses/UnprocessableEntity"
                  },
                  "500": {
                    "$ref": "#/components/responses/ServerError"
                  }
                }
              }
            },
            "/api/compressions": {
              "post": {
                "operationId": "compress",
                "summary": "Queue a compression job (`temper compress`): a q8_0 or q4_0 GGUF, or an int8 or q4 folder for the engine, with its size and quality",
                "tags": [
                  "jobs"
                ],
                "description": "Unknown ids are a 404; a dataset that is not text, an unknown format or a GGUF output are a 422. The report appears as `compression` in GET /api/jobs/{id}.",
                "requestBody": {
                  "required": true,
                  "content": {
                    "application/json": {
                      "schema": {
                        "$ref": "#/components/schemas/CompressRequest"
                      },
                      "example": {
                        "output": "o-0123456789ab",
                        "dataset": "d-0123456789ab",
                        "format": "q8_0"
                      }
                    }
                  }
                },
                "responses": {
                  "201": {
                    "description": "Queued (a job with method `compress`); its output is a `gguf` output.",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/JobRecord"
                        }
                      }
                    }
                  },
                  "400": {
                    "$ref": "#/components/responses/BadRequest"
                  },
                  "401": {
                    "$ref": "#/components/responses/Unauthorized"
                  },
                  "404": {
                    "$ref": "#/components/responses/NotFound"
                  },
                  "413": {
                    "$ref": "#/components/responses/PayloadTooLarge"
                  },
                  "422": {
                    "$ref": "#/components/responses/UnprocessableEntity"
                  },
                  "500": {
                    "$ref": "#/components/responses/ServerError"
                  }
                }
              }
            },
            "/api/evaluations/{id}": {
              "get": {
                "operationId": "getEvaluation",
                "summary": "An evaluation job with its result",
                "tags": [
                  "jobs"
                ],
                "parameters": [
                  {
                    "name": "id",
                    "in": "path",
                    "required": true,
                    "description": "The job's id.",
                    "schema": {
                      "type": "string",
                      "minLength": 1,
                      "example": "j-0123456789ab"
                    }
                  }
                ],
                "responses": {
                  "200": {
                    "description": "The job; `evaluation` holds the result once it has succeeded.",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/JobDetail"
                        }
                      }
                    }
                  },
                  "401": {
                    "$ref": "#/components/responses/Unauthorized"
                  },
                  "404": {
                    "$ref": "#/components/responses/NotFound"
                  },
                  "500": {
                    "$ref": "#/components/responses/ServerError"
                  }
                }
              }
            },
            "/api/deployments/{id}/chat": {
              "post": {
                "operationId": "chatWithDeployment",
                "summary": "A chat completion from a running deployment (the playground's route)",
                "tags": [
                  "deployments"
                ],
                "parameters": [
                  {
                    "name": "id",
                    "in": "path",
                    "required": true,
                    "description": "The deployment's id.",
                    "schema": {
                      "type": "string",
                      "minLength": 1,
                      "example": "dep-0123456789ab"
                    }
                  }
                ],
                "requestBody": {
                  "required": true,
                  "content": {
                    "application/json": {
                      "schema": {
                        "type": "object",
                        "additionalProperties": true
                      },
                      "example": {
                        "model": "o-0123456789ab",
                        "messages": [
                          {
                            "role": "user",
                            "content": "Hello"
                          }
                        ],
                        "max_tokens": 16
                      }
                    }
                  }
                },
                "responses": {
                  "200": {
                    "description": "The deployment's OpenAI chat completion, passed through.",
                    "content": {
                      "application/json": {
                        "schema": {
                          "type": "object",
                          "additionalProperties": true
                        }
                      }
                    }
                  },
                  "409": {
                    "description": "The deployment is not running.",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/Error"
                        }
                      }
                    }
                  },
                  "400": {
                    "$ref": "#/components/responses/BadRequest"
                  },
                  "401": {
                    "$ref": "#/components/responses/Unauthorized"
                  },
                  "404": {
                    "$ref": "#/components/responses/NotFound"
                  },
                  "422": {
                    "$ref": "#/components/responses/UnprocessableEntity"
                  },
                  "500": {
                    "$ref": "#/components/responses/ServerError"
                  }
                }
              }
            },
            "/api/outputs": {
              "get": {
                "operationId": "listOutputs",
                "summary": "Trained outputs, oldest first",
                "tags": [
                  "outputs"
                ],
                "responses": {
                  "200": {
                    "description": "The outputs.",
                    "content": {
                      "application/json": {
                        "schema": {
                          "type": "array",
                          "items": {
                            "$ref": "#/components/schemas/OutputRecord"
                          }
                        }
                      }
                    }
                  },
                  "401": {
                    "$ref": "#/components/responses/Unauthorized"
                  },
                  "500": {
                    "$ref": "#/components/responses/ServerError"
                  }
                }
              }
            },
            "/api/outputs/{id}/files/{name}": {
              "get": {
                "operationId": "downloadOutputFile",
                "summary": "Download one file of an output",
                "tags": [
                  "outputs"
                ],
                "parameters": [
                  {
                    "name": "id",
                    "in": "path",
                    "required": true,
                    "description": "The output's id.",
                    "schema": {
                      "type": "string",
                      "minLength": 1,
                      "example": "o-0123456789ab"
                    }
                  },
                  {
                    "name": "name",
                    "in": "path",
                    "required": true,
                    "description": "The file's name in the output.",
                    "schema": {
                      "type": "string"
                    },
                    "example": "adapter_model.safetensors"
                  }
                ],
                "responses": {
                  "200": {
                    "description": "The file, as an attachment.",
                    "content": {
                      "application/octet-stream": {
                        "schema": {
                          "type": "string",
                          "format": "binary"
                        }
                      }
                    }
                  },
                  "401": {
                    "$ref": "#/components/responses/Unauthorized"
                  },
                  "404": {
                    "$ref": "#/components/responses/NotFound"
                  },
                  "500": {
                    "$ref": "#/components/responses/ServerError"
                  }
                }
              }
            },
            "/api/outputs/{id}": {
              "get": {
                "operationId": "getOutput",
                "summary": "An output, its files and lineage",
                "tags": [
                  "outputs"
                ],
                "parameters": [
                  {
                    "name": "id",
                    "in": "path",
                    "required": true,
                    "description": "The output's id.",
                    "schema": {
                      "type": "string",
                      "minLength": 1,
                      "example": "o-0123456789ab"
                    }
                  }
                ],
                "responses": {
                  "200": {
                    "description": "The output.",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/OutputCard"
                        }
                      }
                    }
                  },
                  "401": {
                    "$ref": "#/components/responses/Unauthorized"
                  },
                  "404": {
                    "$ref": "#/components/responses/NotFound"
                  },
                  "500": {
                    "$ref": "#/components/responses/ServerError"
                  }
                }
              }
            },
            "/api/deployments": {
              "get": {
                "operationId": "listDeployments",
                "summary": "Deployments, newest first",
                "tags": [
                  "deployments"
                ],
                "responses": {
                  "200": {
                    "description": "The deployments.",
                    "content": {
                      "application/json": {
                        "schema": {
                          "type": "array",
                          "items": {
                            "$ref": "#/components/schemas/DeploymentRecord"
                          }
                        }
                      }
                    }
                  },
                  "401": {
                    "$ref": "#/components/responses/Unauthorized"
                  },
                  "500": {
                    "$ref": "#/components/responses/ServerError"
                  }
                }
              },
              "post": {
                "operationId": "deploy",
                "summary": "Deploy an output or a base model as an OpenAI-compatible API",
                "tags": [
                  "deployments"
                ],
                "description": "Answers when the server is up. Unknown ids are a 404; neither `output` nor `model` is a 422; a server that exits before binding its port is a 500. The JSON body may be at most 1 MiB.",
                "requestBody": {
                  "required": true,
                  "content": {
                    "application/json": {
                      "schema": {
                        "$ref": "#/components/schemas/DeployRequest"
                      },
                      "example": {
                        "output": "o-0123456789ab"
                      }
                    }
                  }
                },
                "responses": {
                  "201": {
                    "description": "Started (`running`), or `failed` when it never answered /health. Deploying another adapter of a base that already has an adapter server restarts that server with every adapter and answers its record.",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/DeploymentRecord"
                        }
                      }
                    }
                  },
                  "400": {
                    "$ref": "#/components/responses/BadRequest"
                  },
                  "401": {
                    "$ref": "#/components/responses/Unauthorized"
                  },
                  "404": {
                    "$ref": "#/components/responses/NotFound"
                  },
                  "413": {
                    "$ref": "#/components/responses/PayloadTooLarge"
                  },
                  "422": {
                    "$ref": "#/components/responses/UnprocessableEntity"
                  },
                  "500": {
                    "$ref": "#/components/responses/ServerError"
                  }
                }
              }
            },
            "/api/deployments/{id}": {
              "get": {
                "operationId": "getDeployment",
                "summary": "A deployment",
                "tags": [
                  "deployments"
                ],
                "parameters": [
                  {
                    "name": "id",
                    "in": "path",
                    "required": true,
                    "description": "The deployment's id.",
                    "schema": {
                      "type": "string",
                      "minLength": 1,
                      "example": "dep-0123456789ab"
                    }
                  }
                ],
                "responses": {
                  "200": {
                    "description": "The deployment.",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/DeploymentRecord"
                        }
                      }
                    }
                  },
                  "401": {
                    "$ref": "#/components/responses/Unauthorized"
                  },
                  "404": {
                    "$ref": "#/components/responses/NotFound"
                  },
                  "500": {
                    "$ref": "#/components/responses/ServerError"
                  }
                }
              }
            },
            "/api/deployments/{id}/stop": {
              "post": {
                "operationId": "stopDeployment",
                "summary": "Stop a deployment",
                "tags": [
                  "deployments"
                ],
                "parameters": [
                  {
                    "name": "id",
                    "in": "path",
                    "required": true,
                    "description": "The deployment's id.",
                    "schema": {
                      "type": "string",
                      "minLength": 1,
                      "example": "dep-0123456789ab"
                    }
                  }
                ],
                "responses": {
                  "202": {
                    "description": "Stopped (SIGTERM: requests in flight finish first).",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/DeploymentRecord"
                        }
                      }
                    }
                  },
                  "401": {
                    "$ref": "#/components/responses/Unauthorized"
                  },
                  "404": {
                    "$ref": "#/components/responses/NotFound"
                  },
                  "500": {
                    "$ref": "#/components/responses/ServerError"
                  }
                }
              }
            }
          },
          "components": {
            "securitySchemes": {
              "bearerAuth": {
                "type": "http",
                "scheme": "bearer",
                "description": "A token from `temper gallery token create`; required only when the gallery is bound beyond loopback."
              }
            },
            "schemas": {
              "Health": {
                "type": "object",
                "required": [
                  "status"
                ],
                "properties": {
                  "status": {
                    "type": "string",
                    "enum": [
                      "ok"
                    ]
                  }
                }
              },
              "Error": {
                "type": "object",
                "required": [
                  "error"
                ],
                "description": "Every error answers this, with the HTTP status repeated in `error.status`.",
                "properties": {
                  "error": {
                    "type": "object",
                    "required": [
                      "message",
                      "field",
                      "status"
                    ],
                    "properties": {
                      "message": {
                        "type": "string"
                      },
                      "field": {
                        "type": "string",
                        "nullable": true,
                        "description": "The request field at fault (`path`, `name`, `format`, `file`, `method`, `model`, `dataset`, `output`, `recipe`, `recipe.<key>`, a JSON coding path), or null."
                      },
                      "status": {
                        "type": "integer",
                        "minimum": 400,
                        "maximum": 599
                      }
                    }
                  }
                }
              },
              "ModelRecord": {
                "type": "object",
                "required": [
                  "id",
                  "name",
                  "path",
                  "architecture",
                  "parameters",
                  "contextLength",
                  "createdAt"
                ],
                "properties": {
                  "id": {
                    "type": "string",
                    "minLength": 1,
                    "description": "`m-` and 12 hex digits."
                  },
                  "name": {
                    "type": "string"
                  },
                  "path": {
                    "type": "string",
                    "description": "The model's folder in the gallery (its files linked from the artifact store)."
                  },
                  "architecture": {
                    "type": "string",
                    "description": "`model_type` from config.json."
                  },
                  "parameters": {
                    "type": "integer",
                    "format": "int64",
                    "description": "Weight count computed from config.json."
                  },
                  "contextLength": {
                    "type": "integer",
                    "format": "int64",
                    "description": "`max_position_embeddings` from config.json."
                  },
                  "license": {
                    "type": "string",
                    "nullable": true,
                    "description": "`license:` from the model card's front matter; absent when it has none."
                  },
                  "createdAt": {
                    "type": "string",
                    "format": "date-time",
                    "description": "ISO 8601, e.g. 2025-01-31T12:00:00Z."
                  }
                }
              },
              "DatasetRecord": {
                "type": "object",
                "required": [
                  "id",
                  "name",
                  "format",
                  "rows",
                  "sha256",
                  "bytes",
                  "path",
                  "statistics",
                  "createdAt"
                ],
                "properties": {
                  "id": {
                    "type": "string",
                    "minLength": 1,
                    "description": "`d-` and 12 hex digits."
                  },
                  "name": {
                    "type": "string",
                    "description": "The uploaded file name."
                  },
                  "format": {
                    "$ref": "#/components/schemas/DatasetFormat"
                  },
                  "rows": {
                    "type": "integer",
                    "format": "int64"
                  },
                  "sha256": {
                    "type": "string",
                    "pattern": "^[0-9a-f]{64}$",
                    "description": "Lowercase hex SHA-256."
                  },
                  "bytes": {
                    "type": "integer",
                    "format": "int64"
                  },
                  "path": {
                    "type": "string"
                  },
                  "statistics": {
                    "type": "string",
                    "description": "A JSON object encoded as a string: `{\"rows\": int, \"bytes\": int, \"meanRecordBytes\": number}`."
                  },
                  "createdAt": {
                    "type": "string",
                    "format": "date-time",
                    "description": "ISO 8601, e.g. 2025-01-31T12:00:00Z."
                  }
                }
              },
              "DatasetFormat": {
                "type": "string",
                "enum": [
                  "chat",
                  "instruction",
                  "text",
                  "preference",
                  "prompt"
                ],
                "description": "`chat`, `instruction` or `text` train SFT; `preference` trains DPO; `prompt` trains GRPO."
              },
              "TrainingMethod": {
                "type": "string",
                "enum": [
                  "sft",
                  "dpo",
                  "grpo"
                ],
                "description": "The trainers a job can be submitted for."
              },
              "JobMethod": {
                "type": "string",
                "enum": [
                  "sft",
                  "dpo",
                  "grpo",
                  "eval",
                  "compress"
                ],
                "description": "What a job runs: a trainer, or an evaluation (`eval`, submitted through /api/evaluations)."
              },
              "JobState": {
                "type": "string",
                "enum": [
                  "queued",
                  "running",
                  "succeeded",
                  "failed",
                  "cancelled"
                ]
              },
              "JobRecord": {
                "type": "object",
                "required": [
                  "id",
                  "method",
                  "modelID",
                  "datasetID",
                  "recipe",
                  "state",
                  "createdAt",
                  "attempts",
                  "cancelRequested"
                ],
                "properties": {
                  "id": {
                    "type": "string",
                    "minLength": 1,
                    "description": "`j-` and 12 hex digits."
                  },
                  "method": {
                    "$ref": "#/components/schemas/JobMethod"
                  },
                  "modelID": {
                    "type": "string",
                    "description": "The base model (for a job that starts from an output: that output's base)."
                  },
                  "datasetID": {
                    "type": "string"
                  },
                  "parentOutputID": {
                    "type": "string",
                    "nullable": true,
                    "description": "The output the job starts from; absent when it starts from a base model."
                  },
                  "recipe": {
                    "type": "string",
                    "description": "The resolved recipe the job runs, as JSON text (an object encoded as a string)."
                  },
                  "state": {
                    "$ref": "#/components/schemas/JobState"
                  },
                  "createdAt": {
                    "type": "string",
                    "format": "date-time",
                    "description": "ISO 8601, e.g. 2025-01-31T12:00:00Z."
                  },
                  "startedAt": {
                    "type": "string",
                    "format": "date-time",
                    "description": "Absent until the job first runs.",
                    "nullable": true
                  },
                  "finishedAt": {
                    "type": "string",
                    "format": "date-time",
                    "description": "Absent until the job ends.",
                    "nullable": true
                  },
                  "exitReason": {
                    "type": "string",
                    "nullable": true,
                    "description": "Why a failed or cancelled job ended."
                  },
                  "pid": {
                    "type": "integer",
                    "format": "int64",
                    "nullable": true,
                    "description": "The trainer's process id while it runs."
                  },
                  "attempts": {
                    "type": "integer",
                    "format": "int64",
                    "description": "How many times a worker has started it (resumed jobs count again)."
                  },
                  "cancelRequested": {
                    "type": "boolean"
                  },
                  "workerKey": {
                    "type": "integer",
                    "format": "int64",
                    "nullable": true,
                    "description": "The gallery worker process running it, while it runs (several may share a PostgreSQL registry)."
                  },
                  "ranks": {
                    "type": "integer",
                    "format": "int64",
                    "description": "Its data-parallel processes (`temper launch --ranks`); 1 runs it as one process."
                  },
                  "hosts": {
                    "type": "string",
                    "nullable": true,
                    "description": "The launch hosts its ranks run on, comma-separated, one per rank; absent: the worker's machine."
                  }
                }
              },
              "OutputRecord": {
                "type": "object",
                "required": [
                  "id",
                  "jobID",
                  "kind",
                  "path",
                  "sha256",
                  "bytes",
                  "createdAt"
                ],
                "properties": {
                  "id": {
                    "type": "string",
                    "minLength": 1,
                    "description": "`o-` and 12 hex digits."
                  },
                  "jobID": {
                    "type": "string"
                  },
                  "kind": {
                    "type": "string",
                    "enum": [
                      "adapter",
                      "model",
                      "gguf",
                      "quantized"
                    ],
                    "description": "`adapter` (PEFT LoRA), `model` (full weights), `gguf` (a compressed file for llama.cpp and Ollama) or `quantized` (a model folder in the engine's int8 or q4 format, for `temper serve`)."
                  },
                  "path": {
                    "type": "string"
                  },
                  "sha256": {
                    "type": "string",
                    "pattern": "^[0-9a-f]{64}$",
                    "description": "The hash of its manifest: the sorted `name sha256` lines of its files."
                  },
                  "bytes": {
                    "type": "integer",
                    "format": "int64"
                  },
                  "createdAt": {
                    "type": "string",
                    "format": "date-time",
                    "description": "ISO 8601, e.g. 2025-01-31T12:00:00Z."
                  }
                }
              },
              "ArtifactFile": {
                "type": "object",
                "required": [
                  "ownerID",
                  "name",
                  "sha256",
                  "bytes"
                ],
                "properties": {
                  "ownerID": {
                    "type": "string",
                    "description": "The model or output the file belongs to."
                  },
                  "name": {
                    "type": "string"
                  },
                  "sha256": {
                    "type": "string",
                    "pattern": "^[0-9a-f]{64}$",
                    "description": "Lowercase hex SHA-256."
                  },
                  "bytes": {
                    "type": "integer",
                    "format": "int64"
                  }
                }
              },
              "LineageEdge": {
                "type": "object",
                "required": [
                  "fromID",
                  "toID",
                  "relation"
                ],
                "properties": {
                  "fromID": {
                    "type": "string"
                  },
                  "toID": {
                    "type": "string"
                  },
                  "relation": {
                    "type": "string",
                    "enum": [
                      "base_model",
                      "dataset",
                      "starts_from",
                      "evaluated_by",
                      "compressed_by",
                      "produced"
                    ],
                    "description": "`base_model`, `dataset`, `starts_from` (into a job), `evaluated_by` / `compressed_by` (an output into its evaluation or compression job) or `produced` (job to output)."
                  }
                }
              },
              "DeploymentState": {
                "type": "string",
                "enum": [
                  "starting",
                  "running",
                  "stopped",
                  "failed"
                ]
              },
              "DeploymentRecord": {
                "type": "object",
                "required": [
                  "id",
                  "modelID",
                  "outputIDs",
                  "state",
                  "createdAt"
                ],
                "description": "A managed `temper serve` process on loopback: a base model with any number of its adapter outputs (each served under its output id, the base under its model id), or a full-model output.",
                "properties": {
                  "id": {
                    "type": "string",
                    "minLength": 1,
                    "description": "`dep-` and 12 hex digits."
                  },
                  "modelID": {
                    "type": "string"
                  },
                  "outputIDs": {
                    "type": "array",
                    "items": {
                      "type": "string"
                    }
                  },
                  "url": {
                    "type": "string",
                    "nullable": true,
                    "description": "The OpenAI base URL (`http://127.0.0.1:PORT/v1`); absent until the server has bound its port."
                  },
                  "state": {
                    "$ref": "#/components/schemas/DeploymentState"
                  },
                  "createdAt": {
                    "type": "string",
                    "format": "date-time",
                    "description": "ISO 8601, e.g. 2025-01-31T12:00:00Z."
                  },
                  "pid": {
                    "type": "integer",
                    "format": "int64",
                    "nullable": true,
                    "description": "The server's process id while it runs."
                  },
                  "port": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 65535,
                    "nullable": true,
                    "description": "The server's loopback port."
                  },
                  "exitReason": {
                    "type": "string",
                    "nullable": true,
                    "description": "Why a failed deployment did not start."
                  },
                  "workerKey": {
                    "type": "integer",
                    "format": "int64",
                    "nullable": true,
                    "description": "The gallery worker process that serves it."
                  }
                }
              },
              "ModelCard": {
                "type": "object",
                "required": [
                  "model",
                  "files"
                ],
                "properties": {
                  "model": {
                    "$ref": "#/components/schemas/ModelRecord"
                  },
                  "files": {
                    "type": "array",
                    "items": {
                      "$ref": "#/components/schemas/ArtifactFile"
                    }
                  }
                }
              },
              "JobDetail": {
                "type": "object",
                "required": [
                  "job",
                  "metrics",
                  "resources"
                ],
                "properties": {
                  "job": {
                    "$ref": "#/components/schemas/JobRecord"
                  },
                  "output": {
                    "allOf": [
                      {
                        "$ref": "#/components/schemas/OutputRecord"
                      }
                    ],
                    "nullable": true,
                    "description": "The job's output once it succeeded; absent before."
                  },
                  "metrics": {
                    "type": "array",
                    "description": "The trainer's metrics.jsonl, one object a line (a line still being written is left out).",
                    "items": {
                      "type": "object",
                      "additionalProperties": true
                    }
                  },
                  "resources": {
                    "type": "array",
                    "description": "The worker's resources.jsonl samples, one object a line.",
                    "items": {
                      "type": "object",
                      "additionalProperties": true
                    }
                  },
                  "evaluation": {
                    "nullable": true,
                    "description": "An evaluation job's result (`temper eval`'s JSON); absent otherwise."
                  },
                  "compression": {
                    "nullable": true,
                    "description": "A compression job's report (`temper compress`'s compression.json: format, file, bytes_before, bytes_after, quality rows); absent otherwise."
                  }
                }
              },
              "OutputCard": {
                "type": "object",
                "required": [
                  "output",
                  "files",
                  "lineage",
                  "usedBy"
                ],
                "properties": {
                  "output": {
                    "$ref": "#/components/schemas/OutputRecord"
                  },
                  "files": {
                    "type": "array",
                    "items": {
                      "$ref": "#/components/schemas/ArtifactFile"
                    }
                  },
                  "lineage": {
                    "type": "array",
                    "items": {
                      "$ref": "#/components/schemas/LineageEdge"
                    },
                    "description": "Everything it came from, transitively: its job, base model, dataset and earlier outputs and their jobs."
                  },
                  "usedBy": {
                    "type": "array",
                    "items": {
                      "$ref": "#/components/schemas/LineageEdge"
                    },
                    "description": "The edges that start at it: jobs that start from it."
                  }
                }
              },
              "ImportModelRequest": {
                "type": "object",
                "required": [
                  "path"
                ],
                "properties": {
                  "path": {
                    "type": "string",
                    "minLength": 1,
                    "description": "A Hugging Face model folder on the gallery's machine (config.json and .safetensors weights)."
                  },
                  "name": {
                    "type": "string",
                    "nullable": true,
                    "description": "Defaults to the folder's name."
                  }
                }
              },
              "SubmitJobRequest": {
                "type": "object",
                "required": [
                  "method",
                  "dataset"
                ],
                "properties": {
                  "method": {
                    "$ref": "#/components/schemas/TrainingMethod"
                  },
                  "model": {
                    "type": "string",
                    "nullable": true,
                    "description": "The base model's id; needed unless `output` is given (then, if given, it must be that output's base)."
                  },
                  "dataset": {
                    "type": "string",
                    "description": "A dataset id whose format fits the method."
                  },
                  "output": {
                    "type": "string",
                    "nullable": true,
                    "description": "An output to start from (SFT -> DPO -> GRPO)."
                  },
                  "recipe": {
                    "type": "object",
                    "nullable": true,
                    "additionalProperties": true,
                    "description": "The method's hyperparameters in the CLI's recipe schema; the gallery sets `model`, `data`, `output` and `adapter` itself (giving them is a 422). Without `max_steps` or `epochs` the job runs one epoch."
                  },
                  "ranks": {
                    "type": "integer",
                    "nullable": true,
                    "description": "Data-parallel processes (`temper launch --ranks`, 1 to 64), each taking the recipe's batch size (GRPO: its prompts per generation); 1 by default."
                  },
                  "hosts": {
                    "type": "array",
                    "items": {
                      "type": "string"
                    },
                    "nullable": true,
                    "description": "One of the gallery's launch hosts (`gallery serve --launch-hosts`) per rank; a host may take several. Absent: the ranks run on the worker's machine."
                  }
                }
              },
              "EvaluateRequest": {
                "type": "object",
                "required": [
                  "dataset",
                  "kind"
                ],
                "description": "Give `output` (evaluated with its base model; `compare_base` also evaluates the base) or `model`.",
                "properties": {
                  "output": {
                    "type": "string",
                    "nullable": true,
                    "description": "An output id."
                  },
                  "model": {
                    "type": "string",
                    "nullable": true,
                    "description": "A model id (used when `output` is absent)."
                  },
                  "dataset": {
                    "type": "string",
                    "description": "A dataset id whose format fits the kind: loss (chat, instruction, text), preference (preference), accuracy and answers (prompt)."
                  },
                  "kind": {
                    "type": "string",
                    "enum": [
                      "loss",
                      "accuracy",
                      "preference",
                      "answers"
                    ]
                  },
                  "compare_base": {
                    "type": "boolean",
                    "nullable": true,
                    "description": "Also evaluate the base without the adapter."
                  },
                  "limit": {
                    "type": "integer",
                    "minimum": 1,
                    "nullable": true,
                    "description": "Evaluate the first N records only."
                  },
                  "max_new_tokens": {
                    "type": "integer",
                    "minimum": 1,
                    "nullable": true,
                    "description": "New tokens per greedy answer."
                  }
                }
              },
              "CompressRequest": {
                "type": "object",
                "required": [
                  "dataset",
                  "format"
                ],
                "description": "Give `output` (an adapter is merged into its base first) or `model`.",
                "properties": {
                  "output": {
                    "type": "string",
                    "nullable": true,
                    "description": "An output id (not a GGUF one)."
                  },
                  "model": {
                    "type": "string",
                    "nullable": true,
                    "description": "A model id (used when `output` is absent)."
                  },
                  "dataset": {
                    "type": "string",
                    "description": "A text dataset (`{\"text\": ...}` lines) for the quality measurement."
                  },
                  "format": {
                    "type": "string",
                    "enum": [
                      "q8_0",
                      "q4_0",
                      "int8",
                      "q4"
                    ],
                    "description": "q8_0 or q4_0: a GGUF for llama.cpp and Ollama; int8 or q4: a model folder in the engine's formats, for temper serve."
                  }
                }
              },
              "DeployRequest": {
                "type": "object",
                "description": "Give `output` (deploys it with its base model) or `model` (the base alone); neither is a 422.",
                "properties": {
                  "output": {
                    "type": "string",
                    "nullable": true,
                    "description": "An output id."
                  },
                  "model": {
                    "type": "string",
                    "nullable": true,
                    "description": "A model id (used when `output` is absent)."
                  }
                }
              },
              "DatasetRecordLine": {
                "type": "object",
                "additionalProperties": true,
                "description": "One record: `{\"messages\": [{\"role\", \"content\"}]}` (chat), `{\"instruction\", \"output\"}` (instruction), `{\"text\"}` (text), `{\"prompt\", \"chosen\", \"rejected\"}` (preference) or `{\"prompt\": [messages]}` (prompt).",
                "anyOf": [
                  {
                    "type": "object",
                    "required": [
                      "text"
                    ],
                    "properties": {
                      "text": {
                        "type": "string"
                      }
                    }
                  },
                  {
                    "type": "object",
                    "required": [
                      "instruction",
                      "output"
                    ],
                    "properties": {
                      "instruction": {
                        "type": "string"
                      },
                      "output": {
                        "type": "string"
                      }
                    }
                  },
                  {
                    "type": "object",
                    "required": [
                      "messages"
                    ],
                    "properties": {
                      "messages": {
                        "type": "array",
                        "items": {
                          "$ref": "#/components/schemas/ChatMessage"
                        }
                      }
                    }
                  },
                  {
                    "type": "object",
                    "required": [
                      "prompt",
                      "chosen",
                      "rejected"
                    ]
                  },
                  {
                    "type": "object",
                    "required": [
                      "prompt"
                    ],
                    "properties": {
                      "prompt": {
                        "type": "array",
                        "items": {
                          "$ref": "#/components/schemas/ChatMessage"
                        }
                      }
                    }
                  }
                ]
              },
              "ChatMessage": {
                "type": "object",
                "required": [
                  "role",
                  "content"
                ],
                "properties": {
                  "role": {
                    "type": "string",
                    "enum": [
                      "system",
                      "user",
                      "assistant"
                    ]
                  },
                  "content": {
                    "type": "string"
                  }
                }
              }
            },
            "responses": {
              "BadRequest": {
                "description": "Malformed JSON, a missing field or a field of the wrong type.",
                "content": {
                  "application/json": {
                    "schema": {
                      "$ref": "#/components/schemas/Error"
                    }
                  }
                }
              },
              "Unauthorized": {
                "description": "No or an invalid bearer token (only when the gallery is bound beyond loopback).",
                "headers": {
                  "WWW-Authenticate": {
                    "schema": {
                      "type": "string",
                      "enum": [
                        "Bearer"
                      ]
                    }
                  }
                },
                "content": {
                  "application/json": {
                    "schema": {
                      "$ref": "#/components/schemas/Error"
                    }
                  }
                }
              },
              "NotFound": {
                "description": "No such id.",
                "content": {
                  "application/json": {
                    "schema": {
                      "$ref": "#/components/schemas/Error"
                    }
                  }
                }
              },
              "PayloadTooLarge": {
                "description": "The body is over the limit.",
                "content": {
                  "application/json": {
                    "schema": {
                      "$ref": "#/components/schemas/Error"
                    }
                  }
                }
              },
              "UnprocessableEntity": {
                "description": "Well-formed but invalid values.",
                "content": {
                  "application/json": {
                    "schema": {
                      "$ref": "#/components/schemas/Error"
                    }
                  }
                }
              },
              "ServerError": {
                "description": "The gallery failed (storage, database or a process it runs).",
                "content": {
                  "application/json": {
                    "schema": {
                      "$ref": "#/components/schemas/Error"
                    }
                  }
                }
              }
            }
          }
        }
        """#
}
