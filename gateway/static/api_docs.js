// The API docs page (/api/v1/docs): Swagger UI over /api/v1/openapi.json.
// "Try it out" runs in the signed-in browser: the session cookie goes along, and writes carry the
// X-CSRF-Token header read from the xueji_csrf cookie, as the gateway requires.
(function () {
  "use strict";

  function csrfToken() {
    var match = document.cookie.match(/(?:^|;\s*)xueji_csrf=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  document.addEventListener("DOMContentLoaded", function () {
    var root = document.getElementById("swagger-ui");
    window.SwaggerUIBundle({
      url: root.getAttribute("data-spec-url"),
      domNode: root,
      deepLinking: true,
      docExpansion: "none",
      defaultModelsExpandDepth: 0,
      // No calls to an outside validator: the page works offline.
      validatorUrl: null,
      requestInterceptor: function (req) {
        req.headers["X-CSRF-Token"] = csrfToken();
        return req;
      }
    });
  });
})();
