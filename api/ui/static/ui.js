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

  function explain(status, body) {
    try {
      return "Error " + status + ": " + JSON.parse(body).error.message;
    } catch (e) {
      return "Error " + status;
    }
  }

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

  if (sessionStorage.getItem(KEY)) {
    start();
  } else {
    showSignIn("");
  }
})();
