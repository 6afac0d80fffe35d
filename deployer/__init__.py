"""s3-cloudfront-deploy: publish static files to S3 and invalidate CloudFront."""

__version__ = "1.0.0"
