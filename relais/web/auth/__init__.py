"""Who is signed in and what every answer carries: passwords, server-side sessions, the login throttle and
CSRF tokens (security), OpenID Connect's configuration and account linking (oidc), security headers."""
