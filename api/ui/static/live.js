// Live fragments. An element with hx-trigger="live" and data-live-events="<url> ..." is
// refreshed (its own hx-get) whenever one of those server-sent event streams sends an event.
// EventSource cannot send the key, so the streams are read with fetch. A stream that cannot
// be followed (refused, too many open, the network) is replaced by polling every POLL_MS; a
// stream that ends (its job or batch finished) refreshes once more, and the refreshed
// fragment, which then lists no stream, ends it. One stream per URL, shared by the elements
// that list it, kept open across their refreshes.
(function () {
  "use strict";
  var POLL_MS = 2000;
  var DEFAULT_EVERY_MS = 500; // at most one refresh per element this often
  var RECONNECTS = 3; // a broken stream is resumed (Last-Event-ID) this often, then polled

  var streams = new Map(); // url -> {controller, timer}
  var ended = new Set(); // streams that finished: never reopened on this page
  var refreshes = new WeakMap(); // element -> {last, timer}

  function listed() {
    var urls = new Set();
    document.querySelectorAll("[data-live-events]").forEach(function (element) {
      element.dataset.liveEvents.split(/\s+/).forEach(function (url) {
        if (url) {
          urls.add(url);
        }
      });
    });
    return urls;
  }

  // Fires `live` on an element at most once per its data-live-ms, the last one delayed
  // rather than dropped, so the final state always shows.
  function refresh(element) {
    var every = Number(element.dataset.liveMs || DEFAULT_EVERY_MS);
    var state = refreshes.get(element) || { last: 0, timer: null };
    refreshes.set(element, state);
    if (state.timer) {
      return;
    }
    var wait = Math.max(0, state.last + every - Date.now());
    state.timer = setTimeout(function () {
      state.timer = null;
      state.last = Date.now();
      if (element.isConnected) {
        htmx.trigger(element, "live");
      }
    }, wait);
  }

  function refreshListing(url) {
    document.querySelectorAll("[data-live-events]").forEach(function (element) {
      if (element.dataset.liveEvents.split(/\s+/).indexOf(url) >= 0) {
        refresh(element);
      }
    });
  }

  function poll(url) {
    var stream = streams.get(url);
    stream.timer = setInterval(function () { refreshListing(url); }, POLL_MS);
    refreshListing(url);
  }

  // Reads one text/event-stream response; calls onEvent(id) for each event (comments and
  // blank keep-alive lines are skipped). Resolves when the server ends the stream.
  function read(response, onEvent) {
    var reader = response.body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    function pump() {
      return reader.read().then(function (chunk) {
        if (chunk.done) {
          return;
        }
        buffer += decoder.decode(chunk.value, { stream: true }).replace(/\r\n?/g, "\n");
        var end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          var block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          var id = null;
          var isEvent = false;
          block.split("\n").forEach(function (line) {
            if (line.indexOf("id:") === 0) {
              id = line.slice(3).trim();
            } else if (line.indexOf("data:") === 0) {
              isEvent = true;
            }
          });
          if (isEvent) {
            onEvent(id);
          }
        }
        return pump();
      });
    }
    return pump();
  }

  function follow(url) {
    var stream = { controller: null, timer: null, lastId: null, failures: 0 };
    streams.set(url, stream);
    function connect() {
      stream.controller = new AbortController();
      var headers = { Authorization: window.aigcUi.authorization(), Accept: "text/event-stream" };
      if (stream.lastId) {
        headers["Last-Event-ID"] = stream.lastId;
      }
      fetch(url, { headers: headers, signal: stream.controller.signal })
        .then(function (response) {
          if (response.status === 204) {
            return "ended"; // resumed after the end: nothing more will come
          }
          if (!response.ok || !response.body) {
            throw new Error("refused");
          }
          return read(response, function (id) {
            stream.failures = 0;
            if (id) {
              stream.lastId = id;
            }
            refreshListing(url);
          }).then(function () { return "ended"; });
        })
        .then(function () {
          ended.add(url);
          streams.delete(url);
          refreshListing(url);
        })
        .catch(function () {
          if (stream.controller.signal.aborted) {
            return; // no element lists it any more
          }
          stream.failures += 1;
          if (stream.lastId && stream.failures <= RECONNECTS) {
            setTimeout(connect, POLL_MS);
          } else {
            poll(url);
          }
        });
    }
    connect();
  }

  function stop(url) {
    var stream = streams.get(url);
    streams.delete(url);
    if (stream.controller) {
      stream.controller.abort();
    }
    clearInterval(stream.timer);
  }

  // After every swap: follow each stream an element lists, drop those none lists. A stream
  // that ended but is still listed (its fragment lags the end) is polled until it is not.
  function reconcile() {
    var wanted = listed();
    Array.from(streams.keys()).forEach(function (url) {
      if (!wanted.has(url)) {
        stop(url);
      }
    });
    wanted.forEach(function (url) {
      if (streams.has(url)) {
        return;
      }
      if (ended.has(url)) {
        streams.set(url, { controller: null, timer: null });
        poll(url);
      } else {
        follow(url);
      }
    });
  }

  document.body.addEventListener("htmx:afterSettle", reconcile);
  document.body.addEventListener("aigc:cleared", reconcile);
})();
