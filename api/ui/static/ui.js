// Keeps the API key in this tab's sessionStorage and sends it with every htmx request;
// a 401 from any fragment brings back the sign-in form.
(function () {
  "use strict";
  var KEY = "aigc-api-key";
  var main = document.getElementById("main");
  var signin = document.getElementById("signin");
  var signout = document.getElementById("signout");
  var notice = document.getElementById("notice");

  function authorization() {
    return "Bearer " + sessionStorage.getItem(KEY);
  }

  function showSignIn(message) {
    sessionStorage.removeItem(KEY);
    main.hidden = true;
    main.innerHTML = "";
    document.body.dispatchEvent(new Event("aigc:cleared")); // live.js closes its streams
    signout.hidden = true;
    signin.hidden = false;
    notice.textContent = message;
    document.getElementById("key").focus();
  }

  function start() {
    signin.hidden = true;
    signout.hidden = false;
    main.hidden = false;
    htmx.ajax("GET", document.body.dataset.start, { target: "#main" });
  }

  var ERRORS_SHOWN = 5;

  // The API's error envelope in words: its message, then the first few bad fields.
  function explain(status, body) {
    var error;
    try {
      error = JSON.parse(body).error;
    } catch (e) {
      return "Error " + status;
    }
    var lines = ["Error " + status + ": " + error.message];
    (error.errors || []).slice(0, ERRORS_SHOWN).forEach(function (item) {
      var where = item.line ? "line " + item.line + ", " : "";
      var line = where + (item.field || "") + ": " + item.message;
      if (error.message.indexOf(line) < 0) { // one field's error is often the message itself
        lines.push(line);
      }
    });
    return lines.join("\n");
  }

  // A POST with the key; resolves to the JSON answer, or rejects after the notice says why.
  function post(url, body, contentType, extraHeaders) {
    var headers = Object.assign(
      { Authorization: authorization(), "Content-Type": contentType }, extraHeaders || {}
    );
    return fetch(url, { method: "POST", body: body, headers: headers }).then(function (response) {
      return response.text().then(function (text) {
        if (response.status === 401) {
          showSignIn("That key was refused: sign in again.");
          throw new Error("refused");
        }
        if (!response.ok) {
          notice.textContent = explain(response.status, text);
          throw new Error("failed");
        }
        return JSON.parse(text);
      });
    });
  }

  // A page of the UI: its address in the bar, its fragment in #main.
  function open(path) {
    history.pushState({}, "", path);
    var part = path === "/ui" ? "/ui/parts/batches" : path.replace(/^\/ui/, "/ui/parts");
    htmx.ajax("GET", part, { target: "#main" });
  }

  function openBatch(id) {
    open("/ui/batches/" + id);
  }

  // A random key: a submit sent twice (a double click, a retry) makes one batch or job.
  function idempotencyKey() {
    if (window.crypto.randomUUID) {
      return window.crypto.randomUUID(); // secure contexts only (https, localhost)
    }
    var bytes = window.crypto.getRandomValues(new Uint8Array(16));
    return Array.from(bytes, function (b) { return b.toString(16).padStart(2, "0"); }).join("");
  }

  // The chosen file is checked by the server first (its columns, first jobs, every bad
  // row); only a file that passes gets a submit button.
  var checked = null; // {file, key}: the file the preview shows

  function previewBatch(form) {
    var file = form.elements.file.files[0];
    var slot = document.getElementById("preview-slot");
    checked = null;
    slot.innerHTML = "";
    if (!file) {
      return;
    }
    notice.textContent = "Checking " + file.name + "…";
    fetch("/ui/parts/tables/preview?name=" + encodeURIComponent(file.name), {
      method: "POST",
      body: file,
      headers: { Authorization: authorization(), "Content-Type": "application/octet-stream" },
    }).then(function (response) {
      return response.text().then(function (text) {
        if (response.status === 401) {
          showSignIn("That key was refused: sign in again.");
        } else if (!response.ok) {
          notice.textContent = explain(response.status, text);
        } else {
          notice.textContent = "";
          checked = { file: file, key: idempotencyKey() };
          slot.innerHTML = text;
          var submit = document.getElementById("submit-batch");
          (submit || slot.querySelector("h3") || slot).focus();
        }
      });
    });
  }

  // A JSONL file goes to the API as it is; a CSV or XLSX is first turned into jobs by
  // the server (aigc.tabular's rules), then submitted the same way.
  function submitBatch(form, button) {
    var file = checked.file;
    var priority = form.elements.priority.value;
    var once = { "Idempotency-Key": checked.key };
    button.disabled = true;
    notice.textContent = "Submitting " + file.name + "…";
    var created;
    if (/\.jsonl$/i.test(file.name)) {
      created = post(
        "/v1/batches?priority=" + encodeURIComponent(priority), file, "application/x-ndjson", once
      );
    } else {
      created = post(
        "/ui/parts/tables?name=" + encodeURIComponent(file.name), file, "application/octet-stream"
      ).then(function (table) {
        return post(
          "/v1/batches", JSON.stringify({ jobs: table.jobs, priority: priority }),
          "application/json", once
        );
      });
    }
    created
      .then(function (batch) {
        notice.textContent = "";
        openBatch(batch.id);
      })
      .catch(function () { button.disabled = false; /* the notice already says why */ });
  }

  document.addEventListener("change", function (event) {
    if (event.target.id === "batch-file") {
      previewBatch(event.target.form);
    }
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest("#submit-batch");
    if (button && checked) {
      submitBatch(button.form || document.getElementById("upload"), button);
    }
  });

  // Cancel and retry: the /v1 routes, then the fragment the button names as it now stands.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-action]");
    if (!button || (button.dataset.confirm && !window.confirm(button.dataset.confirm))) {
      return;
    }
    button.disabled = true;
    post(button.dataset.action, null, "application/json")
      .then(function () {
        var target = button.dataset.thenTarget;
        htmx.ajax("GET", button.dataset.then, {
          target: target, swap: target === "#main" ? "innerHTML" : "outerHTML",
        });
      })
      .catch(function () { button.disabled = false; });
  });

  // A thumbnail opens its image full size; Escape or Close shuts it.
  var lightbox = document.getElementById("lightbox");
  document.addEventListener("click", function (event) {
    var thumb = event.target.closest("button[data-lightbox]");
    if (!thumb) {
      return;
    }
    var image = lightbox.querySelector("img");
    image.src = thumb.dataset.lightbox;
    image.alt = thumb.querySelector("img").alt;
    lightbox.showModal();
  });
  document.getElementById("lightbox-close").addEventListener("click", function () {
    lightbox.close();
  });

  document.addEventListener("submit", function (event) {
    if (event.target.id === "upload") {
      event.preventDefault();
      previewBatch(event.target);
    }
  });

  document.body.addEventListener("htmx:configRequest", function (event) {
    if (sessionStorage.getItem(KEY)) {
      event.detail.headers["Authorization"] = authorization();
    }
  });

  document.body.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail.xhr;
    if (xhr.status === 401) {
      showSignIn("That key was refused: sign in again.");
    } else {
      notice.textContent = explain(xhr.status, xhr.responseText);
    }
  });

  document.body.addEventListener("htmx:afterSwap", function () {
    notice.textContent = "";
  });

  signin.addEventListener("submit", function (event) {
    event.preventDefault();
    var field = document.getElementById("key");
    sessionStorage.setItem(KEY, field.value.trim());
    field.value = "";
    notice.textContent = "";
    start();
  });

  signout.addEventListener("click", function () {
    showSignIn("Signed out.");
  });

  // Links to key-authenticated downloads (the ZIP, the results) are fetched with the key
  // and handed to the browser as a file.
  document.addEventListener("click", function (event) {
    var link = event.target.closest("a[data-authorized]");
    if (!link) {
      return;
    }
    event.preventDefault();
    notice.textContent = "Downloading " + link.dataset.filename + "…";
    fetch(link.href, { headers: { Authorization: authorization() } })
      .then(function (response) {
        if (response.status === 401) {
          showSignIn("That key was refused: sign in again.");
          return null;
        }
        if (!response.ok) {
          return response.text().then(function (body) {
            notice.textContent = explain(response.status, body);
            return null;
          });
        }
        return response.blob();
      })
      .then(function (blob) {
        if (!blob) {
          return;
        }
        var url = URL.createObjectURL(blob);
        var save = document.createElement("a");
        save.href = url;
        save.download = link.dataset.filename;
        document.body.appendChild(save);
        save.click();
        save.remove();
        setTimeout(function () { URL.revokeObjectURL(url); }, 60000);
        notice.textContent = "";
      });
  });

  // What the page's other scripts (job_form.js, live.js) share.
  window.aigcUi = {
    authorization: authorization,
    explain: explain,
    idempotencyKey: idempotencyKey,
    notice: notice,
    open: open,
    post: post,
    showSignIn: showSignIn,
  };

  if (sessionStorage.getItem(KEY)) {
    start();
  } else {
    showSignIn("");
  }
})();
