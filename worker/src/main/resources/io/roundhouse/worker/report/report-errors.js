// Runs first, in the head: every script error, unhandled rejection and console.error call is kept
// and shown in #console-errors (data-count: how many; 0 once the page has loaded without any).
(function () {
  var errors = [];
  function show() {
    var el = document.getElementById('console-errors');
    if (el) {
      el.textContent = errors.join('\n');
      el.hidden = errors.length === 0;
      el.setAttribute('data-count', String(errors.length));
    }
  }
  function record(text) {
    errors.push(String(text));
    show();
  }
  window.addEventListener('error', function (e) {
    record('error: ' + e.message + ' (' + e.filename + ':' + e.lineno + ')');
  });
  window.addEventListener('unhandledrejection', function (e) {
    record('unhandled rejection: ' + e.reason);
  });
  var original = console.error;
  console.error = function () {
    record('console.error: ' + Array.prototype.join.call(arguments, ' '));
    original.apply(console, arguments);
  };
  document.addEventListener('DOMContentLoaded', show);
})();
