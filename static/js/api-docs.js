// Interactive API documentation: Swagger UI (served from this site) on our OpenAPI document.
(function () {
  "use strict";
  const target = document.getElementById("swagger-ui");
  if (!target || !window.SwaggerUIBundle) return;
  window.SwaggerUIBundle({
    url: target.dataset.spec,
    domNode: target,
    deepLinking: true,
    supportedSubmitMethods: ["get", "post"],
    defaultModelsExpandDepth: 0,
  });
})();
