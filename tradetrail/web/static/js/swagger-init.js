// Swagger UI for /docs from our own copy: the initializer lives here, not inline (the CSP allows no inline
// script). It reads the document's URL from the page.
window.addEventListener("DOMContentLoaded", function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  window.ui = window.SwaggerUIBundle({
    url: root.getAttribute("data-openapi-url") || "/openapi.json",
    domNode: root,
    deepLinking: true,
    // no "try it out" against the live API without a bearer token: the Authorize button asks for one
    persistAuthorization: false,
    validatorUrl: null,  // the public validator badge would load from the internet
    presets: [window.SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
