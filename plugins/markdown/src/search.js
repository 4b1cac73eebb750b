// The search box of a site built by copper-wasm's markdown/build. The index is a
// script (searchindex.js) loaded the first time the box is used, so it works from
// file:// as well as from a server. Words are cut as the build cuts them
// (search.rs); every word of the query must begin a term of the section.
(function () {
  "use strict";
  var input = document.getElementById("search");
  var list = document.getElementById("search-results");
  if (!input || !list) return;
  var root = input.getAttribute("data-root") || "";
  var loading = false;
  var waiting = [];

  function withIndex(then) {
    if (window.copperSearchIndex) return then(window.copperSearchIndex);
    waiting.push(then);
    if (loading) return;
    loading = true;
    var script = document.createElement("script");
    script.src = root + "_site/searchindex.js";
    script.onload = function () {
      var calls = waiting;
      waiting = [];
      calls.forEach(function (call) { call(window.copperSearchIndex); });
    };
    script.onerror = function () {
      loading = false;
      show([], "The search index could not be loaded.");
    };
    document.head.appendChild(script);
  }

  function words(text) {
    return (text.toLowerCase().match(/[\p{L}\p{N}_]+/gu) || []).filter(function (w) {
      var n = Array.from(w).length;
      return n >= 2 && n <= 40;
    });
  }

  // Every document holding a term that `word` begins, with its weight × rarity.
  var keys = null;
  function scores(index, word) {
    if (!keys) keys = Object.keys(index.terms);
    var total = index.docs.length;
    var found = new Map();
    keys.forEach(function (term) {
      if (term.lastIndexOf(word, 0) !== 0) return;
      var postings = index.terms[term];
      var rarity = Math.log(1 + total / (postings.length / 2));
      var exact = term === word ? 1 : 0.5;
      for (var i = 0; i < postings.length; i += 2) {
        var s = postings[i + 1] * rarity * exact;
        found.set(postings[i], Math.max(found.get(postings[i]) || 0, s));
      }
    });
    return found;
  }

  function search(index, query) {
    var ranked = null;
    words(query).forEach(function (word) {
      var these = scores(index, word);
      if (ranked === null) {
        ranked = these;
        return;
      }
      var both = new Map();
      ranked.forEach(function (s, doc) {
        if (these.has(doc)) both.set(doc, s + these.get(doc));
      });
      ranked = both;
    });
    if (!ranked) return [];
    return Array.from(ranked.entries())
      .sort(function (a, b) { return b[1] - a[1] || a[0] - b[0]; })
      .slice(0, 30)
      .map(function (entry) { return index.docs[entry[0]]; });
  }

  function show(results, message) {
    list.textContent = "";
    if (message) {
      var li = document.createElement("li");
      li.className = "none";
      li.textContent = message;
      list.appendChild(li);
    }
    results.forEach(function (doc) {
      var li = document.createElement("li");
      var a = document.createElement("a");
      a.href = root + doc[0];
      a.textContent = doc[1];
      var teaser = document.createElement("small");
      teaser.textContent = doc[2];
      li.appendChild(a);
      li.appendChild(teaser);
      list.appendChild(li);
    });
    list.hidden = false;
  }

  function run() {
    var query = input.value;
    if (words(query).length === 0) {
      list.hidden = true;
      return;
    }
    withIndex(function (index) {
      if (input.value !== query) return;
      var results = search(index, query);
      show(results, results.length ? "" : "Nothing found for “" + query + "”.");
    });
  }

  input.addEventListener("focus", function () { withIndex(function () {}); });
  input.addEventListener("input", run);
  input.addEventListener("keydown", function (event) {
    if (event.key === "Escape") {
      input.value = "";
      list.hidden = true;
    } else if (event.key === "Enter") {
      var first = list.querySelector("a");
      if (first) window.location.href = first.href;
      event.preventDefault();
    }
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "/" && document.activeElement !== input) {
      event.preventDefault();
      input.focus();
    }
  });
  var asked = new URLSearchParams(window.location.search).get("search");
  if (asked) {
    input.value = asked;
    run();
  }
})();
