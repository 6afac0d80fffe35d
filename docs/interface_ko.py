"""Korean descriptions of every input and output, for README.ko.md's generated tables.

The English descriptions live in `deployer/interface.py` (the one source of truth for names
and defaults); this file only translates them. `python docs/gen_tables.py --write` builds
README.ko.md's tables from these, and `tests/unit/test_readmes.py` fails when an input or
output has no Korean description here, when one is left over after a rename, or when a
description does not state the input's current default (`` `16` ``, `` `true` ``, ...).

Adding an input or output: add one line below with the same name, in the order of
`deployer/interface.py`, ending with `기본값: ...` (or `필수.`), then run
`python docs/gen_tables.py --write`. Terms follow GitHub Docs in Korean: 작업 (job),
단계 (step), 워크플로 (workflow), 비밀 (secret), 리포지토리 (repository), 실행기 (runner),
끌어오기 요청 (pull request); "CloudFront 배포" is the distribution, "배포" alone a deploy.
"""

from __future__ import annotations

INPUTS_KO: dict[str, str] = {
    "aws-access-key-id": (
        "AWS 액세스 키 ID(리포지토리 비밀에서). 기본값: 없음. 키가 없으면 역할"
        "(`role-to-assume`)이나 AWS 표준 자격 증명 체인을 씁니다."
    ),
    "aws-secret-access-key": (
        "AWS 비밀 액세스 키(리포지토리 비밀에서). `aws-access-key-id`와 함께 필요합니다. "
        "기본값: 없음."
    ),
    "aws-session-token": "임시 키의 AWS 세션 토큰. 기본값: 없음.",
    "role-to-assume": (
        "GitHub OIDC로(`permissions: id-token: write` 필요), 또는 키도 주어지면 역할 체이닝으로 "
        "맡을 IAM 역할의 ARN. 기본값: 없음."
    ),
    "role-session-name": "맡은 역할의 세션 이름. 기본값: `s3-cloudfront-deploy`.",
    "role-duration-seconds": "맡은 역할 자격 증명의 유효 시간(초), 900-43200. 기본값: `3600`.",
    "audience": "GitHub OIDC 토큰의 대상(audience). 기본값: `sts.amazonaws.com`.",
    "aws-region": (
        "버킷의 리전(예: 서울 `ap-northeast-2`). 기본값: `AWS_REGION`, 그다음 "
        "`AWS_DEFAULT_REGION`, 그다음 `us-east-1`."
    ),
    "bucket": "대상 S3 버킷 이름. 필수.",
    "destination-prefix": (
        "버킷 안의 키 접두사(예: `app/`, `preview/pr-42`). 기본값: 없음(버킷 루트)."
    ),
    "source-dir": (
        "올릴 폴더, 작업 공간(workspace) 기준 상대 경로(예: `dist`). 기본값: `.`(리포지토리 전체)."
    ),
    "distribution-id": (
        "무효화할 CloudFront 배포(distribution) ID, 여러 개면 줄바꿈이나 쉼표로 구분. "
        "기본값: 없음(무효화 안 함)."
    ),
    "delete-removed": "로컬에 더 이상 없는 접두사 아래 객체를 지웁니다. 기본값: `true`.",
    "max-delete": (
        "지울 객체가 이보다 많으면 아무것도 쓰기 전에 배포 전체를 거부합니다. 기본값: `256`."
    ),
    "keep-removed-assets": (
        "지워진 지문(해시) 붙은 에셋(`immutable`로 제공되는 파일)을 아직 열려 있는 페이지를 위해 "
        "버킷에 남겨 둘 기간: 숫자와 단위 `s`, `m`, `h`, `d`(`7d`, `36h`, `90s`). `0`이면 바로 "
        "지웁니다. `delete-removed: true`일 때만. 기본값: `7d`."
    ),
    "exclude": (
        "올리지 않을 glob 패턴, 한 줄에 하나. 기본 제외(`.git/`, `.github/`, `.env*`, "
        "`.DS_Store`, `Thumbs.db`)에 더해집니다. 패턴에 맞는 원격 객체도 지우지 않고 둡니다. "
        "기본값: 없음."
    ),
    "cache-control": (
        "`패턴: 값` 형식의 Cache-Control 규칙, 한 줄에 하나. 처음 맞는 규칙이 기본값보다 "
        "우선합니다. 기본값: 없음."
    ),
    "content-type": "`패턴: 값` 형식의 Content-Type 지정, 한 줄에 하나. 기본값: 없음.",
    "invalidation": (
        "`changed`(바뀌거나 지워진 것만), `all`(`/*`) 또는 `none`. 기본값: `changed`."
    ),
    "invalidation-max-paths": (
        "경로가 이보다 많으면 가장 좁은 와일드카드로 묶습니다(와일드카드 하나가 경로 하나로 "
        "과금). 기본값: `15`."
    ),
    "wait-for-invalidation": (
        "CloudFront가 모든 무효화를 완료했다고 보고할 때까지 기다립니다. 기본값: `false`."
    ),
    "endpoint-url": (
        "S3 호환 엔드포인트(Cloudflare R2, MinIO, 로컬 서버). `AWS_ENDPOINT_URL*`보다 "
        "우선합니다. 기본값: 없음(AWS)."
    ),
    "concurrency": (
        "동시에 보내는 요청 수: `auto`(연결에 맞춰 조절: 처리량이 늘어나는 동안 늘리고, "
        "S3가 속도를 늦추라고 하면 절반으로 줄이며, 최대 256) 또는 1-256의 고정된 수. "
        "기본값: `auto`."
    ),
    "dry-run": "무엇이 바뀔지 계획하고 보고만 합니다. 아무것도 쓰지 않습니다. 기본값: `false`.",
}

OUTPUTS_KO: dict[str, str] = {
    "uploaded-count": "쓴 파일 수(새 파일, 내용 변경, 헤더만 변경).",
    "deleted-count": "지운 객체 수.",
    "unchanged-count": "이미 최신이던 파일 수.",
    "uploaded-bytes": "보낸 바이트 수(헤더만 바꾼 파일은 보내지 않음).",
    "invalidation-id": (
        "CloudFront 무효화 ID, CloudFront 배포가 여러 개면 쉼표로 구분. 무효화가 필요 없었으면 "
        "빈 값."
    ),
    "invalidation-paths": "무효화한 경로, JSON 목록.",
    "changed-keys": "쓰거나 지운 S3 키, JSON 목록.",
    "retained-count": (
        "유예 기간 동안 버킷에 남겨 둔, 지워진 지문 붙은 에셋 수(`keep-removed-assets`)."
    ),
    "pruned-count": "유예 기간이 끝나 지운, 남겨 두었던 에셋 수(`deleted-count`에 포함).",
    "site-url": (
        "사이트 주소: 첫 CloudFront 배포의 첫 대체 도메인 이름, 없으면 그 `*.cloudfront.net` "
        "도메인. CloudFront 배포가 없으면 빈 값."
    ),
}
