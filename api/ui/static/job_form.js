// The single-job form (parts/job_form.html): its inputs become POST /v1/jobs's body, each
// parameter converted to the JSON type its schema gives (data-type), then the job's page.
(function () {
  "use strict";

  // A parameter's input as JSON, or undefined when left empty (the model's default applies).
  // Text that is not of the type goes to the API as it is: its 422 names the field.
  function paramValue(input) {
    var type = input.dataset.type;
    if (input.type === "checkbox") {
      return input.checked;
    }
    if (input.type === "number" && input.validity.badInput) {
      throw new Error("params." + input.dataset.param + ": not a number");
    }
    var text = input.value;
    if (text === "") {
      return undefined;
    }
    if (type === "integer" || type === "number") {
      var number = Number(text);
      return Number.isNaN(number) ? text : number;
    }
    if (type === "boolean") {
      return text === "true";
    }
    if (type === "json") {
      try {
        return JSON.parse(text);
      } catch (e) {
        throw new Error("params." + input.dataset.param + ": not valid JSON");
      }
    }
    return text;
  }

  function jobBody(form) {
    var params = {};
    form.querySelectorAll("[data-param]").forEach(function (input) {
      var value = paramValue(input);
      if (value !== undefined) {
        params[input.dataset.param] = value;
      }
    });
    return {
      kind: form.elements.kind.value,
      model: form.elements.model.value,
      prompt: form.elements.prompt.value,
      priority: form.elements.priority.value,
      params: params,
    };
  }

  // crypto.randomUUID exists only in secure contexts (https, localhost); the API over plain
  // http on another host gets 128 random bits as hex instead.
  function idempotencyKey() {
    if (window.crypto.randomUUID) {
      return window.crypto.randomUUID();
    }
    return Array.prototype.map.call(window.crypto.getRandomValues(new Uint8Array(16)), function (b) {
      return b.toString(16).padStart(2, "0");
    }).join("");
  }

  function submitJob(form) {
    var ui = window.aigcUi;
    var button = form.querySelector("button[type=submit]");
    if (button.disabled) {
      return;
    }
    var body;
    try {
      body = JSON.stringify(jobBody(form));
    } catch (e) {
      ui.notice.textContent = e.message;
      return;
    }
    // One job per click: the button stays disabled until the answer comes, and the key lets
    // the API answer a resent copy of this request with the job it already made.
    button.disabled = true;
    ui.notice.textContent = "Submitting…";
    ui.post("/v1/jobs", body, "application/json", { "Idempotency-Key": idempotencyKey() })
      .then(function (job) {
        ui.open("/ui/jobs/" + job.id);
      })
      .catch(function (error) {
        // An API error is already in the notice; a request that got no answer is not.
        if (ui.notice.textContent === "Submitting…") {
          ui.notice.textContent = "No answer from the API: " + error.message;
        }
      })
      .finally(function () { button.disabled = false; });
  }

  document.addEventListener("submit", function (event) {
    if (event.target.id === "job-form") {
      event.preventDefault();
      submitJob(event.target);
    }
  });
})();
