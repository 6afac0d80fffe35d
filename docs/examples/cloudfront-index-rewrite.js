// CloudFront Function, runtime cloudfront-js-2.0, event type viewer-request.
// With an S3 REST origin and Origin Access Control, S3 has no index documents:
// this maps folder URLs to their index.html before the cache lookup.
//   /about/ -> /about/index.html    /about -> /about/index.html    / -> /index.html
//   /app.js, /img/logo.png, /about/index.html: unchanged
function handler(event) {
    var request = event.request;
    var uri = request.uri;
    if (uri.endsWith('/')) {
        request.uri = uri + 'index.html';
    } else if (uri.lastIndexOf('.') < uri.lastIndexOf('/')) {
        request.uri = uri + '/index.html';
    }
    return request;
}
