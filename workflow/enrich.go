package workflow

import "github.com/oops-deploy/oops/release"

// EnrichBare fills author, subject and commit details of bare releases
// (artifacts without oops metadata) from the local git repository, when
// there is one and it has the commit.
func (r *Runner) EnrichBare(rels []release.Release) {
	var repo *release.Repo
	for i := range rels {
		if !rels[i].Bare {
			continue
		}
		if repo == nil {
			wd, err := r.d.WorkDir()
			if err != nil {
				return
			}
			if repo, err = release.OpenRepo(wd); err != nil {
				return
			}
		}
		info, err := repo.CommitInfo(rels[i].Commit)
		if err != nil {
			continue
		}
		r := &rels[i]
		r.Author, r.AuthorEmail, r.Subject, r.CommitTime = info.Author, info.Email, info.Subject, info.Time
		r.Branch, r.Tags = info.Branch, info.Tags
	}
}
