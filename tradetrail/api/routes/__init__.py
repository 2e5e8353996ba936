"""One router per resource; each route calls a service and shapes nothing but the HTTP answer."""
