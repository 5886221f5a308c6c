"""Bulk tests run on the local store; a test or class opts into S3 as well with

    @pytest.mark.parametrize("storage", ["local", "s3"], indirect=True)

(the `storage` and `settings_overrides` fixtures of tests/fixtures/app.py).
"""
