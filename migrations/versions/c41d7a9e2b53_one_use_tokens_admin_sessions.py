"""one-use feedback tokens, server-side admin sessions

Revision ID: c41d7a9e2b53
Revises: 7f44b301060e
Create Date: 2026-12-04 16:00:00.000000

Feedback stored before this revision keeps a NULL token_id: a unique index allows
any number of NULLs in SQLite and PostgreSQL alike.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c41d7a9e2b53'
down_revision = '7f44b301060e'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.add_column(sa.Column('token_id', sa.String(length=32), nullable=True))
        batch_op.create_index(batch_op.f('ix_feedback_token_id'), ['token_id'], unique=True)

    op.create_table('admin_sessions',
    sa.Column('id_sha256', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('password_hmac', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id_sha256')
    )
    with op.batch_alter_table('admin_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_admin_sessions_expires_at'), ['expires_at'], unique=False)


def downgrade():
    with op.batch_alter_table('admin_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_admin_sessions_expires_at'))

    op.drop_table('admin_sessions')
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_feedback_token_id'))
        batch_op.drop_column('token_id')
